# The deploy checks (tests/it/deploy_live.rs) run docs/quickstart-compose.md's signing command,
# which needs openssl and curl; the Python side (jsonschema, kubernetes-validate) is pinned in
# tests/python/requirements.txt and promtool comes from 40-promtool.sh.
DEPLOY_PKGS=()
command -v openssl >/dev/null 2>&1 || DEPLOY_PKGS+=(openssl)
command -v curl >/dev/null 2>&1 || DEPLOY_PKGS+=(curl)
debian_install "the deploy checks" "${DEPLOY_PKGS[@]}"
