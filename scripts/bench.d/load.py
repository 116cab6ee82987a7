"""Load for scripts/bench: wrk closed loop (saturation) and oha paced at a fixed rate (latency
corrected for coordinated omission), both pinned to the load core, both parsed to plain dicts."""

import hashlib
import hmac
import json
import os
import subprocess

from configs import BODY, PATH, SECRET

HERE = os.path.dirname(os.path.abspath(__file__))
SIGNATURE = "sha256=" + hmac.new(SECRET.encode(), BODY.encode(), hashlib.sha256).hexdigest()
HEADERS = {"Content-Type": "application/json", "X-GitHub-Event": "order", "X-Hub-Signature-256": SIGNATURE}


def wrk(core, port, seconds, tag, connections, logdir):
    """Closed loop: `connections` connections, one thread, `seconds` s; each request carries its
    own delivery id (`TAG-THREAD-N`). Returns sent, completed, non2xx, rps and latency in µs."""
    argv = ["taskset", "-c", str(core), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
            "-s", os.path.join(HERE, "signed.lua"), f"http://127.0.0.1:{port}{PATH}", "--", SIGNATURE, tag, BODY]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    with open(os.path.join(logdir, f"wrk-{tag}.txt"), "w") as f:
        f.write(out)
    line = next(l for l in out.splitlines() if l.startswith("BENCH "))
    res = json.loads(line[len("BENCH "):])
    res["ok"] = res["completed"] - res["non2xx"]
    res["rps"] = res["completed"] / (res["duration_us"] / 1e6)
    return res


def oha(core, port, seconds, rate, connections, tag, logdir):
    """Open loop at `rate` requests/s for `seconds` s, latency measured from when each request
    was due (`--latency-correction`), waiting for the requests still in flight at the end. No
    delivery id header: strangler gives each event a new ULID, so ids stay distinct."""
    argv = ["taskset", "-c", str(core), "oha", "--no-tui", "--output-format", "json", "-z", f"{seconds}s",
            "-c", str(connections), "-q", str(rate), "--latency-correction", "--wait-ongoing-requests-after-deadline",
            "-m", "POST", "-d", BODY]
    for name, value in HEADERS.items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(f"http://127.0.0.1:{port}{PATH}")
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    with open(os.path.join(logdir, f"oha-{tag}.json"), "w") as f:
        f.write(out)
    data = json.loads(out)
    codes = {int(k): v for k, v in data.get("statusCodeDistribution", {}).items()}
    errors = sum(data.get("errorDistribution", {}).values())
    pct = data["latencyPercentiles"]
    return {
        "sent": sum(codes.values()) + errors,
        "ok": sum(v for k, v in codes.items() if 200 <= k < 300),
        "non2xx": sum(v for k, v in codes.items() if not 200 <= k < 300),
        "errors": errors,
        "rps": data["summary"]["requestsPerSec"],
        "p50_us": pct["p50"] * 1e6,
        "p99_us": pct["p99"] * 1e6,
        "p999_us": pct["p99.9"] * 1e6,
    }
