# cargo-deny: licences (only those deny.toml allows), bans (duplicate versions warn) and sources
# (crates.io only) of every crate in Cargo.lock. Pinned; `cargo install` took 7.5 minutes on
# 2 busy cores the first time. Advisories are not checked here: their database is cloned from
# github.com, which these machines cannot reach (see deny.toml).
CARGO_DENY_VERSION=0.20.2
if ! cargo deny --version 2>/dev/null | grep -qx "cargo-deny $CARGO_DENY_VERSION"; then
  echo "== installing cargo-deny $CARGO_DENY_VERSION (first run only)"
  cargo install cargo-deny --locked --version "$CARGO_DENY_VERSION"
fi
echo "== cargo deny check licenses bans sources"
cargo deny --log-level error check licenses bans sources
