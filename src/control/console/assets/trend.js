// strangler console: the trend chart, plain SVG written through attributes (the CSP forbids
// style attributes): parity ratio line, volume bars and the dial's changes.

import { $, number, svg, when } from "./dom.js";

export function drawTrend(t) {
  const chart = $("trend");
  chart.replaceChildren();
  const [W, H, left, right, top, bottom] = [720, 200, 44, 710, 10, 172];
  const buckets = t.buckets;
  const n = buckets.length || 1;
  const start = buckets.length ? Date.parse(buckets[0].at) : Date.now() - 3600e3;
  const end = start + n * t.bucket_secs * 1000;
  const x = (ms) => left + ((ms - start) / (end - start)) * (right - left);
  const volume = (b) => b.match + b.mismatch + b.missing_new + b.missing_legacy + b.truncated + b.live;
  const most = Math.max(1, ...buckets.map(volume));
  // The ratio axis starts at the tenth below the lowest ratio shown, so 95 % and 99 % look apart.
  const ratios = buckets.map((b) => b.ratio).filter((r) => r !== null);
  const floor = ratios.length ? Math.max(0, Math.floor((Math.min(...ratios) - 0.05) * 10) / 10) : 0;
  const y = (ratio) => bottom - ((ratio - floor) / (1 - floor)) * (bottom - top);
  chart.append(svg("line", { class: "axis", x1: left, x2: right, y1: bottom, y2: bottom }));
  chart.append(svg("line", { class: "axis", x1: left, x2: right, y1: top, y2: top }));
  const label = (text, lx, ly, anchor = "end") => {
    const e = svg("text", { x: lx, y: ly, "text-anchor": anchor });
    e.textContent = text;
    chart.append(e);
  };
  label("100%", left - 4, top + 4);
  label(`${Math.round(floor * 100)}%`, left - 4, bottom + 4);
  label(`${most} events / ${t.bucket_secs} s at most`, right, H - 10);
  label("1 h ago", left, H - 10, "start");
  const barWidth = Math.max(1, (right - left) / n - 0.5);
  const bars = svg("g", { class: "volume" });
  buckets.forEach((b, i) => {
    const v = volume(b);
    if (!v) return;
    const h = (v / most) * (bottom - top) * 0.5;
    bars.append(svg("rect", { x: x(start + i * t.bucket_secs * 1000).toFixed(1), y: (bottom - h).toFixed(1), width: barWidth.toFixed(1), height: h.toFixed(1) }));
  });
  chart.append(bars);
  let d = "";
  let pen = "M";
  buckets.forEach((b, i) => {
    if (b.ratio === null) {
      pen = "M";
      return;
    }
    // A segment starts with a dot, so a lone bucket between empty ones still shows.
    d += `${pen}${x(start + (i + 0.5) * t.bucket_secs * 1000).toFixed(1)},${y(b.ratio).toFixed(1)} ${pen === "M" ? "h0.1 " : ""}`;
    pen = "L";
  });
  if (d) chart.append(svg("path", { class: "ratio", d: d.trim() }));
  for (const c of t.changes) {
    const cx = x(Date.parse(c.at)).toFixed(1);
    const line = svg("line", { class: "change", "data-version": c.version, x1: cx, x2: cx, y1: top, y2: bottom });
    const title = svg("title");
    title.textContent = `version ${c.version}: ${c.mode} ${number(c.share_percent)}% by ${c.by} (${c.reason}) at ${when(c.at)}`;
    line.append(title);
    chart.append(line);
  }
  chart.setAttribute("viewBox", `0 0 ${W} ${H}`);
}
