# promtool (Debian's `prometheus` package) for tests/it/deploy_metrics.rs, which checks and
# unit-tests deploy/prometheus/alerts.yml. Installed only when missing; exports PROMTOOL.
if ! command -v promtool >/dev/null 2>&1; then
  echo "== apt-get install prometheus (for promtool; first run only)"
  if ! apt-get install -y -qq --no-install-recommends prometheus >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  fi
fi
PROMTOOL="$(command -v promtool)"
export PROMTOOL
