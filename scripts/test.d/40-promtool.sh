# promtool (Debian's `prometheus` package) for tests/it/deploy_metrics.rs, which checks and
# unit-tests deploy/prometheus/alerts.yml. Installed only when missing; exports PROMTOOL.
command -v promtool >/dev/null 2>&1 || debian_install "promtool, for the alert rules" prometheus
PROMTOOL="$(command -v promtool)"
export PROMTOOL
