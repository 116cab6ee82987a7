# What docs/migration-playbook.md's walk-through uses besides strangler (tests/it/playbook.rs runs
# its commands as written): curl and jq, from Debian, installed where missing.
PLAYBOOK_PKGS=()
command -v curl >/dev/null 2>&1 || PLAYBOOK_PKGS+=(curl)
command -v jq >/dev/null 2>&1 || PLAYBOOK_PKGS+=(jq)
debian_install "the playbook walk-through" "${PLAYBOOK_PKGS[@]}"
