# What docs/migration-playbook.md's walk-through uses besides strangler (tests/it/playbook.rs runs
# its commands as written): curl and jq, from Debian, installed where missing.
PLAYBOOK_PKGS=()
command -v curl >/dev/null 2>&1 || PLAYBOOK_PKGS+=(curl)
command -v jq >/dev/null 2>&1 || PLAYBOOK_PKGS+=(jq)
if [ ${#PLAYBOOK_PKGS[@]} -gt 0 ]; then
  echo "== apt-get install ${PLAYBOOK_PKGS[*]} (first run only)"
  if ! apt-get install -y -qq --no-install-recommends "${PLAYBOOK_PKGS[@]}" >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${PLAYBOOK_PKGS[@]}" >/dev/null
  fi
fi
