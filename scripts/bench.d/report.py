"""scripts/bench's output: the table on stdout, results.json and results.csv, and chart.svg (drawn
here, no packages) under target/bench/."""

import csv
import datetime
import json
import math
import os
import platform
import subprocess

# Which nginx row each row's ratio is taken against.
BASE = {"d": "b", "e": "c", "f": "c", "g": "c", "h": "c"}
COLUMNS = ["row", "label", "rps", "cpu_us_per_req", "vs_nginx", "sat_p50_ms", "sat_p99_ms", "sat_p999_ms",
           "rate_rps", "rate_p50_ms", "rate_p99_ms", "rate_p999_ms", "added_rate_p99_ms", "peak_rss_mb", "loss"]


def machine():
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    load = open("/proc/loadavg").read().split()[:3]
    return {"cpu": model, "nproc": os.cpu_count(), "mem_gib": round(mem / 1048576, 1),
            "kernel": platform.release(), "loadavg_at_end": " ".join(load),
            "nginx": version(["nginx", "-v"]), "wrk": version(["wrk", "-v"]), "oha": version(["oha", "--version"])}


def version(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True)
    except OSError:
        return "not found"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0] if text else "?"


def enrich(rows):
    by = {r["row"]: r for r in rows}
    direct = by.get("a")
    for r in rows:
        base = by.get(BASE.get(r["row"]))
        r["vs_nginx"] = (r["cpu_us_per_req"] / base["cpu_us_per_req"]
                         if base and r.get("cpu_us_per_req") and base.get("cpu_us_per_req") else None)
        r["added_rate_p99_ms"] = r["rate_p99_ms"] - direct["rate_p99_ms"] if direct and r["row"] != "a" else None


def fmt(v, digits=1):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


def loss_text(r):
    loss = r.get("loss")
    if not loss:
        return "–"
    verdict = "ok" if loss["passed"] else "FAIL"
    return f"{verdict}: {loss['distinct_ids']:,} ids / {loss['answered_2xx']:,} 2xx, {loss['duplicates']} dup"


def over_capacity(r, rate):
    """A mark when the fixed rate was at or past what the row sustains: its latencies are then
    queueing, not the proxy's own cost."""
    if r["rps"] < rate * 1.1 or r["rate_rps"] < rate * 0.95:
        return f" (over capacity: {r['rate_rps']:,.0f}/s held)"
    return ""


def table(rows, rate):
    head = ["row", "req/s", "CPU µs/req", "vs nginx", "p50/p99/p99.9 sat (ms)", f"p50/p99/p99.9 @{rate}/s (ms)",
            "+p99 vs direct", "peak RSS MB", "Kafka loss check"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"({r['row']}) {r['label']}", fmt(r["rps"], 0), fmt(r["cpu_us_per_req"]),
                 fmt(r["vs_nginx"], 2) + ("×" if r["vs_nginx"] else ""),
                 f"{fmt(r['sat_p50_ms'], 2)} / {fmt(r['sat_p99_ms'], 2)} / {fmt(r['sat_p999_ms'], 2)}",
                 f"{fmt(r['rate_p50_ms'], 2)} / {fmt(r['rate_p99_ms'], 2)} / {fmt(r['rate_p999_ms'], 2)}"
                 + over_capacity(r, rate),
                 fmt(r["added_rate_p99_ms"], 2), fmt(r["peak_rss_mb"]), loss_text(r)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(rows):
    """Issue 11's targets, each with this run's figure: (what, figure, limit, met)."""
    by = {r["row"]: r for r in rows}
    checks = [("passthrough CPU/req vs nginx proxy_pass", "d", "vs_nginx", 1.2, "×"),
              ("shadow + Kafka CPU/req vs nginx + mirror", "e", "vs_nginx", 2.0, "×"),
              ("shadow + Kafka peak RSS (comparator on, no new service)", "e", "peak_rss_mb", 64, " MB"),
              ("passthrough added p99 at 2,000/s over direct", "d", "added_rate_p99_ms", 1.0, " ms"),
              ("shadow + Kafka added p99 at 2,000/s over direct", "e", "added_rate_p99_ms", 2.0, " ms")]
    out = []
    for what, row, key, limit, unit in checks:
        v = by.get(row, {}).get(key)
        if v is not None:
            out.append((what, f"{v:.2f}{unit}", f"≤ {limit}{unit}", v <= limit))
    sat = by.get("d"), by.get("b")
    if all(sat):
        out.append(("passthrough p99 at saturation vs nginx's", f"{sat[0]['sat_p99_ms']:.2f} ms",
                    f"≤ {sat[1]['sat_p99_ms']:.2f} ms", sat[0]["sat_p99_ms"] <= sat[1]["sat_p99_ms"]))
    on_off = by.get("e"), by.get("h")
    if all(on_off):
        ratio = on_off[0]["sat_p99_ms"] / on_off[1]["sat_p99_ms"]
        out.append(("shadow p99 at saturation, comparator on vs off", f"{ratio:.2f}×", "≤ 1.2×", ratio <= 1.2))
    losses = [r for r in rows if r.get("loss")]
    if losses:
        out.append(("zero loss, zero duplicates (Kafka rows)", ", ".join(r["row"] for r in losses), "all pass",
                    all(r["loss"]["passed"] for r in losses)))
    return out


def targets_table(rows):
    lines = ["| target (issue 11) | this run | limit | met |", "|---|---|---|---|"]
    for what, got, limit, met in targets(rows):
        lines.append(f"| {what} | {got} | {limit} | {'yes' if met else 'no'} |")
    return "\n".join(lines)


def svg(rows, meta):
    """Two horizontal bar panels: CPU µs per request (linear), and p99 at the fixed rate (log
    scale: one overloaded row would flatten every other bar)."""
    rate = meta["params"]["rate"]
    panels = [("CPU µs per request (proxy processes)", "cpu_us_per_req", "µs", False),
              (f"p99 at {rate:,} req/s, corrected for coordinated omission (log scale)", "rate_p99_ms", "ms", True)]
    label_w, bar_w, row_h, top = 270, 360, 22, 50
    panel_h = top + row_h * len(rows) + 20
    height = panel_h * len(panels) + 45
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 110}" height="{height}" '
           'font-family="sans-serif" font-size="12">', '<rect width="100%" height="100%" fill="white"/>']
    colours = {"a": "#999999", "b": "#2b8a3e", "c": "#2b8a3e"}
    for i, (title, key, unit, log) in enumerate(panels):
        y0 = i * panel_h
        out.append(f'<text x="10" y="{y0 + 25}" font-size="14" font-weight="bold">{title}</text>')
        values = [r[key] for r in rows if r.get(key)]
        if not values:
            continue
        if log:
            lo, hi = math.log10(min(values) / 2), math.log10(max(values))
            width = lambda v: bar_w * (math.log10(v) - lo) / (hi - lo)  # noqa: E731
        else:
            width = lambda v: bar_w * v / max(values)  # noqa: E731
        for j, r in enumerate(rows):
            y = y0 + top + j * row_h
            mark = " *" if log and over_capacity(r, rate) else ""
            out.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">({r["row"]}) {r["label"]}{mark}</text>')
            v = r.get(key)
            if not v:
                out.append(f'<text x="{label_w + 4}" y="{y + 14}" fill="#666">n/a</text>')
                continue
            w = max(1, width(v))
            out.append(f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row_h - 6}" '
                       f'fill="{colours.get(r["row"], "#1c5d99")}"/>')
            out.append(f'<text x="{label_w + w + 4}" y="{y + 14}">{v:,.1f} {unit}</text>')
    m = meta["machine"]
    notes = [f"* the rate was at or past what the row sustains: its p99 is queueing",
             f'{m["nproc"]} cores ({m["cpu"]}), load average at end {m["loadavg_at_end"]}; {meta["date"]}']
    for k, note in enumerate(notes):
        out.append(f'<text x="10" y="{height - 25 + 15 * k}" fill="#666">{note}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write(rows, out_dir, params):
    enrich(rows)
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(), "params": params}
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows, "targets": [dict(zip(("target", "run", "limit", "met"), t))
                                                           for t in targets(rows)]}, f, indent=2)
    with open(os.path.join(out_dir, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([loss_text(r) if c == "loss" else ("" if r.get(c) is None else r[c]) for c in COLUMNS])
    with open(os.path.join(out_dir, "chart.svg"), "w") as f:
        f.write(svg(rows, meta))
    print(table(rows, params["rate"]))
    print()
    print(targets_table(rows))
    m = meta["machine"]
    print(f"\n{meta['date']}; {m['nproc']} cores ({m['cpu']}), {m['mem_gib']} GiB; load average at end "
          f"{m['loadavg_at_end']}; {params['seconds']} s per phase, {params['connections']} connections; "
          f"took {params['elapsed_s']:.0f} s")
    print(f"wrote {out_dir}/results.json, results.csv, chart.svg")
