#!/usr/bin/env bash
# The test command (README, and what CI runs): installs what the tests need when it is missing,
# then checks formatting and lints and runs the whole suite against a real Kafka-protocol broker.
set -euo pipefail
cd "$(dirname "$0")/.."

debian_install() { # debian_install WHY PKG...: apt-get install PKG... (update once if it fails)
  local why=$1; shift
  [ $# -gt 0 ] || return 0
  echo "== apt-get install $* ($why; first run only)"
  if ! apt-get install -y -qq --no-install-recommends "$@" >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  fi
}

# A cold build of the suite takes about 20 GiB under target/: say so up front rather than fail
# late with "No space left on device" in the linker.
avail_gib=$(df -Pk . | awk 'NR==2 {print int($4 / 1048576)}')
if [ "${avail_gib:-0}" -lt 25 ]; then
  echo "== warning: only ${avail_gib} GiB free here; a cold build and test run needs about 25 GiB" >&2
fi

# Tansu, the Kafka-compatible broker the integration tests start. Pinned; memory storage needs
# `dynostore`, SQLite storage needs `libsql`. About 15 minutes on 2 cores the first time only.
TANSU_VERSION=0.6.0
export TANSU_BIN="${TANSU_BIN:-$HOME/.cargo/bin/tansu}"
if ! "$TANSU_BIN" --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
  echo "== installing tansu $TANSU_VERSION (first run only)"
  cargo install tansu --locked --version "$TANSU_VERSION" --features dynostore,libsql
  export TANSU_BIN="$HOME/.cargo/bin/tansu"
fi

# --- Python test deps (tests/python: the contract test's consumer, schemathesis) -------------
# A venv in target/pyenv with tests/python/requirements.txt (pinned; wheels bundle librdkafka).
# Reinstalls only when requirements.txt changed since the last install. Needs python3 with venv.
PYENV="$PWD/target/pyenv"
PY_REQS=tests/python/requirements.txt
if [ ! -x "$PYENV/bin/python" ]; then
  echo "== creating $PYENV (first run only)"
  python3 -m venv "$PYENV"
fi
if ! cmp -s "$PY_REQS" "$PYENV/.requirements.installed"; then
  echo "== pip install -r $PY_REQS"
  "$PYENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$PY_REQS"
  cp "$PY_REQS" "$PYENV/.requirements.installed"
fi
export STRANGLER_PYTHON="$PYENV/bin/python"
# --- end Python test deps ---------------------------------------------------------------------

# --- Browser test deps (tests/browser: the operator console's headless-browser test) ---------
# Debian's chromium (one apt-get; 29 s here the first time) and playwright-core from
# npm, pinned by tests/browser/package-lock.json; playwright never downloads browsers.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
[ -x /usr/bin/chromium ] || debian_install "the console's browser test" chromium
export STRANGLER_CHROMIUM=/usr/bin/chromium
BROWSER_LOCK=tests/browser/package-lock.json
if [ ! -d tests/browser/node_modules ] || ! cmp -s "$BROWSER_LOCK" tests/browser/node_modules/.lock.installed; then
  echo "== npm ci --prefix tests/browser"
  npm ci --prefix tests/browser --silent --no-audit --no-fund
  cp "$BROWSER_LOCK" tests/browser/node_modules/.lock.installed
fi
# --- end Browser test deps --------------------------------------------------------------------

# --- Further test deps, one file per concern (scripts/test.d/*.sh, sourced in name order) ---
for part in scripts/test.d/*.sh; do
  [ -e "$part" ] || continue
  # shellcheck source=/dev/null
  . "$part"
done

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --all-targets --locked -- "$@"
