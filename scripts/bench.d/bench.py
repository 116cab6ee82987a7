"""scripts/bench's driver: runs every row (direct, nginx, nginx + mirror, strangler passthrough,
shadow, split, write-ahead) on loopback with the proxy under test pinned to its own core, and
writes the table, target/bench/results.json and .csv, and the chart target/bench/chart.svg."""

import json
import os
import re
import shutil
import signal
import sys
import time

import configs
import load
import procs
import report

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "target", "bench")
RELEASE = os.path.join(ROOT, "target", "release")
TANSU = os.environ.get("TANSU_BIN", os.path.expanduser("~/.cargo/bin/tansu"))

PROXY_CORE, LOAD_CORE = 1, 0  # the proxy under test alone on core 1; everything else on core 0
UPSTREAM, SINK = sorted({procs.free_port() for _ in range(2)} | {procs.free_port()})[:2]
PROXY = ADMIN = KAFKA = None  # picked afresh for each row
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))  # saturation and fixed-rate phases, each
WARMUP = 2
CONNECTIONS = 16
RATE = int(os.environ.get("BENCH_RATE", "2000"))  # the fixed-rate phase, requests/s

# (key, label, kind, strangler mode); kind picks how the proxy is started.
ROWS = [
    ("a", "direct (no proxy)", "direct", None),
    ("b", "nginx proxy_pass", "nginx", None),
    ("c", "nginx + mirror", "nginx-mirror", None),
    ("d", "strangler passthrough", "strangler", "passthrough"),
    ("e", "strangler shadow + Kafka", "strangler", "shadow"),
    ("f", "strangler split 50% + service", "strangler", "split"),
    ("g", "strangler shadow, write-ahead spool", "strangler-spool", "shadow"),
    ("h", "strangler shadow, comparator off", "strangler-nocompare", "shadow"),
]


def start_tansu(p, workdir):
    child = p.start("tansu-" + os.path.basename(workdir), LOAD_CORE, [TANSU, "broker", "--listener-url", f"tcp://127.0.0.1:{KAFKA}",
                                         "--advertised-listener-url", f"tcp://127.0.0.1:{KAFKA}",
                                         "--storage-engine", "memory://tansu/"], cwd=workdir)
    procs.wait_until("tansu", lambda: procs.alive(child, "tansu") and procs.port_open(KAFKA), 30)
    return child


def start_proxy(p, key, kind, mode, workdir):
    """Starts the proxy of row `key` (after what it needs); returns (port to load, pids to measure)."""
    if kind == "direct":
        return UPSTREAM, []
    if kind.startswith("nginx"):
        os.makedirs(workdir, exist_ok=True)
        conf = os.path.join(workdir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(configs.nginx_conf(workdir, PROXY, UPSTREAM, SINK if kind == "nginx-mirror" else None))
        master = p.start("nginx-" + key, PROXY_CORE, ["nginx", "-p", workdir, "-c", conf])
        procs.wait_until("nginx", lambda: procs.alive(master, "nginx") and procs.port_open(PROXY), 30)
        workers = procs.wait_until("nginx worker", lambda: procs.children_of(master.pid), 10)
        return PROXY, [master.pid] + workers
    brokers = f"127.0.0.1:{KAFKA}"
    start_tansu(p, workdir)
    spool = os.path.join(workdir, "spool") if kind == "strangler-spool" else None
    conf = os.path.join(workdir, "strangler.toml")
    with open(conf, "w") as f:
        f.write(configs.strangler_conf(mode, PROXY, ADMIN, UPSTREAM, brokers, spool,
                                       comparator=kind != "strangler-nocompare"))
    env = {configs.SECRET_ENV: configs.SECRET}  # logging at its default level too
    proxy = p.start("strangler-" + key, PROXY_CORE, [os.path.join(RELEASE, "strangler"), "run", "--config", conf], env)
    procs.wait_until("strangler /readyz", lambda: procs.alive(proxy, "strangler")
                     and procs.http_ok(f"http://127.0.0.1:{ADMIN}/readyz"), 60)
    if mode == "split":
        service = p.start("service-" + key, LOAD_CORE, [os.path.join(RELEASE, "examples", "shadow_service"),
                                                        "--brokers", brokers, "--topic", configs.TOPIC],
                          {"RUST_LOG": "warn"})
        procs.wait_until("shadow_service", lambda: procs.alive(service, "shadow_service"), 2)
        p.service = service
    return PROXY, [proxy.pid]


def topic_count(dump, timeout=120):
    out = procs.subprocess.run([os.path.join(RELEASE, "examples", "bench_kit"), "count", "--brokers",
                                f"127.0.0.1:{KAFKA}", "--topic", configs.TOPIC, "--timeout-secs", str(timeout),
                                "--dump", dump],
                               capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_row(key, label, kind, mode, logdir):
    global PROXY, ADMIN, KAFKA
    ports = set()
    while len(ports) < 3 or ports & {UPSTREAM, SINK}:
        ports = {procs.free_port() for _ in range(3)}
    PROXY, ADMIN, KAFKA = sorted(ports)
    workdir = os.path.join(OUT, "work", key)
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    p = procs.Procs(logdir)
    p.service = None
    row = {"row": key, "label": label}
    try:
        port, pids = start_proxy(p, key, kind, mode, workdir)
        warm = load.wrk(LOAD_CORE, port, WARMUP, f"{key}warm", CONNECTIONS, logdir)
        cpu0 = procs.cpu_seconds(pids)
        sat = load.wrk(LOAD_CORE, port, SECONDS, f"{key}sat", CONNECTIONS, logdir)
        if mode in ("shadow", "split"):
            # Publishing runs after the answer: let the proxy finish this phase's work before
            # reading its CPU (the wait reads from core 0, not the proxy's).
            row["settled"] = settle(pids)
        cpu1 = procs.cpu_seconds(pids)
        paced = load.oha(LOAD_CORE, port, SECONDS, RATE, CONNECTIONS, f"{key}rate", logdir)
        row.update({
            "rps": sat["rps"],
            "cpu_us_per_req": (cpu1 - cpu0) / sat["completed"] * 1e6 if pids else None,
            "sat_p50_ms": sat["p50_us"] / 1e3, "sat_p99_ms": sat["p99_us"] / 1e3, "sat_p999_ms": sat["p999_us"] / 1e3,
            "rate_rps": paced["rps"],
            "rate_p50_ms": paced["p50_us"] / 1e3, "rate_p99_ms": paced["p99_us"] / 1e3,
            "rate_p999_ms": paced["p999_us"] / 1e3,
            "peak_rss_mb": procs.peak_rss_kib(pids) / 1024 if pids else None,
            "non2xx": warm["non2xx"] + sat["non2xx"] + paced["non2xx"],
            "errors": warm["errors"] + sat["errors"] + paced["errors"],
        })
        if mode in ("shadow", "split"):
            # Stop the proxy gracefully (it flushes what it queued), then read the topic to its end.
            row["metrics"] = scrape_metrics(os.path.join(logdir, f"metrics-{key}.txt"))
            proxy_child = next(c for c in p.children if c.pid == pids[0])
            if p.service:
                p.stop(p.service, signal.SIGINT)
                row["service_handled"] = service_handled(os.path.join(logdir, f"service-{key}.log"))
            row["proxy_exit"] = p.stop(proxy_child)
            counted = topic_count(os.path.join(logdir, f"ids-{key}.txt"))
            ok = warm["ok"] + sat["ok"] + paced["ok"]
            sent = warm["sent"] + sat["sent"] + paced["sent"]
            row["loss"] = loss_check(ok, sent, counted)
    finally:
        p.stop_all()
    return row


def service_handled(log):
    """Events the sample service had handled when stopped (from the consumer kit's closing stats)."""
    text = open(log, errors="replace").read()
    found = re.findall(r"RunStats \{ handled: (\d+)", text)
    return int(found[-1]) if found else None


def scrape_metrics(path):
    """Saves the proxy's /metrics and sums the event counters the loss check relates to."""
    with procs.urllib.request.urlopen(f"http://127.0.0.1:{ADMIN}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    with open(path, "w") as f:
        f.write(text)
    wanted = ("strangler_events_published_total", "strangler_events_dropped_total", "strangler_events_failed_total",
              "strangler_events_spooled_total", "strangler_duplicates_total", "strangler_requests_total")
    sums = {}
    for line in text.splitlines():
        name = line.split("{")[0].split(" ")[0]
        if name in wanted:
            sums[name] = sums.get(name, 0) + float(line.rsplit(" ", 1)[1])
    return sums


def settle(pids, quiet_ticks=3):
    """Waits (30 s at most) until the proxy's CPU stops moving for a few 100 ms ticks in a row;
    False if it never did."""
    state = {"last": procs.cpu_seconds(pids), "quiet": 0}

    def quiet():
        now = procs.cpu_seconds(pids)
        state["quiet"] = state["quiet"] + 1 if now - state["last"] < 0.02 else 0
        state["last"] = now
        return state["quiet"] >= quiet_ticks

    try:
        procs.wait_until("the proxy to go idle", quiet, 30, every=0.1)
        return True
    except RuntimeError:  # still busy (its comparator, say): read the CPU anyway, and say so
        return False


def loss_check(ok, sent, counted):
    """Every 2xx answer's event is on the topic once. wrk abandons the requests in flight when
    it stops (at most one per connection), whose events may be published too: so the check is
    2xx <= distinct ids <= sent, and records == distinct ids (no duplicates)."""
    distinct, records = counted["distinct_ids"], counted["records"]
    lost = max(0, ok - distinct)
    dups = records - distinct
    passed = (counted["complete"] and counted["without_id"] == 0 and lost == 0 and dups == 0
              and distinct <= sent)
    return {"answered_2xx": ok, "sent": sent, "records": records, "distinct_ids": distinct, "lost": lost,
            "duplicates": dups, "unanswered_published": distinct - ok, "passed": passed}


def main():
    only = sys.argv[1] if len(sys.argv) > 1 else "".join(key for key, *_ in ROWS)
    keys = "".join(key for key, *_ in ROWS)
    if len(sys.argv) > 2 or not only or set(only) - set(keys):
        print(f"usage: scripts/bench [ROWS], ROWS = letters among {keys} (default: all)", file=sys.stderr)
        sys.exit(2)
    logdir = os.path.join(OUT, "logs")
    shutil.rmtree(logdir, ignore_errors=True)
    os.makedirs(logdir)
    started = time.monotonic()
    shared = procs.Procs(logdir)
    rows = []
    try:
        kit = os.path.join(RELEASE, "examples", "bench_kit")
        for name, port in (("upstream", UPSTREAM), ("sink", SINK)):
            child = shared.start(name, LOAD_CORE, [kit, "upstream", "--listen", f"127.0.0.1:{port}"])
            procs.wait_until(name, lambda: procs.alive(child, name) and procs.port_open(port), 30)
        for key, label, kind, mode in ROWS:
            if key not in only:
                continue
            print(f"== ({key}) {label}", file=sys.stderr, flush=True)
            rows.append(run_row(key, label, kind, mode, logdir))
    finally:
        shared.stop_all()
    elapsed = time.monotonic() - started
    report.write(rows, OUT, {"seconds": SECONDS, "connections": CONNECTIONS, "rate": RATE, "elapsed_s": elapsed})
    failed = [r["row"] for r in rows if r.get("loss") and not r["loss"]["passed"]]
    if failed:
        print(f"LOSS CHECK FAILED in row(s) {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
