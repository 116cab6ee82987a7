// strangler console: the routes table, one route's trend, mismatches and dial, and the audit
// trail, from the admin API of the replica serving the page. Plain ES2020, no framework; every
// text goes in through textContent or createElement, never parsed as HTML; every style through
// classes (strict CSP).

const REFRESH_MS = 3000;
const TOKEN_KEY = "strangler.token";
const SVG = "http://www.w3.org/2000/svg";
const DASH = "—";

const $ = (id) => document.getElementById(id);
let selected = null; // the selected route's name
let routes = new Map(); // name → the route as GET /api/routes gave it
let pointerFilter = "";
let messageFrom = null; // "read" or "action": a read's message is cleared once reads work again
const shown = { mismatches: "", missing: "", audit: "" }; // what is on the page, to redraw on change only

// ---- small helpers ----

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

function svg(tag, attrs = {}) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

const number = (x) => String(Number(Number(x).toFixed(2)));
const percent = (ratio) => (ratio === null || ratio === undefined ? DASH : `${(ratio * 100).toFixed(1)}%`);
const when = (at) => (at ? `${at.slice(0, 19).replace("T", " ")} UTC` : DASH);
const dial = (d) => (d ? `${d.mode} ${number(d.share_percent)}%` : DASH);

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function setMessage(kind, status, text, from) {
  const m = $("message");
  m.dataset.kind = kind;
  if (status === null) delete m.dataset.status;
  else m.dataset.status = String(status);
  m.textContent = text;
  messageFrom = from;
}

function clearReadMessage() {
  if (messageFrom !== "read") return;
  const m = $("message");
  delete m.dataset.kind;
  delete m.dataset.status;
  m.textContent = "";
  messageFrom = null;
}

// ---- the admin API ----

class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status; // 0: no answer
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  } catch {
    throw new ApiFailure(0, "no_answer", "The admin API did not answer.");
  }
  let json = null;
  try {
    json = await resp.json();
  } catch {
    json = null;
  }
  if (!resp.ok) {
    const error = (json && json.error) || {};
    throw new ApiFailure(resp.status, error.code || "unknown", error.message || resp.statusText);
  }
  return json;
}

const routePath = (name) => `/api/routes/${encodeURIComponent(name)}`;

// ---- the routes table ----

function cells(r) {
  const w = (r.parity && r.parity.windows) || {};
  const steps = r.rollout ? r.rollout.steps.length : 0;
  return {
    name: r.name,
    path: `${r.method} ${r.path}`,
    mode: r.mode,
    share: `${number(r.share_percent)}%`,
    "parity-5m": percent(w["5m"] ? w["5m"].ratio : null),
    "parity-1h": percent(w["1h"] ? w["1h"].ratio : null),
    samples: String(w["1h"] ? w["1h"].samples : 0),
    "new-error-rate": percent(r.new_error_rate),
    guard: r.guard ? r.guard.state : DASH,
    rollout: r.rollout ? `step ${r.rollout.step === null ? 0 : r.rollout.step + 1}/${steps}` : DASH,
    "last-change": `${r.by} · ${r.reason} · ${when(r.at)}`,
  };
}

function drawRoutes(list) {
  const body = $("routes").tBodies[0];
  const rows = new Map([...body.rows].map((tr) => [tr.dataset.route, tr]));
  list.forEach((r, i) => {
    let tr = rows.get(r.name);
    const values = cells(r);
    if (!tr) {
      tr = el("tr", { "data-route": r.name, tabindex: "0", "aria-selected": "false" });
      for (const col of Object.keys(values)) tr.append(el("td", { "data-col": col }));
      tr.addEventListener("click", () => select(r.name));
      tr.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          select(r.name);
        }
      });
    }
    for (const td of tr.cells) {
      const text = values[td.dataset.col];
      if (td.textContent !== text) td.textContent = text;
    }
    tr.classList.toggle("selected", r.name === selected);
    tr.setAttribute("aria-selected", String(r.name === selected));
    if (body.rows[i] !== tr) body.insertBefore(tr, body.rows[i] || null);
    rows.delete(r.name);
  });
  for (const gone of rows.values()) gone.remove();
}

// ---- one route: trend, mismatches, missing, dial ----

function select(name) {
  selected = name;
  const detail = $("detail");
  detail.dataset.route = name;
  $("detail-title").textContent = `Route ${name}`;
  history.replaceState(null, "", `#${encodeURIComponent(name)}`);
  shown.mismatches = shown.missing = "";
  const r = routes.get(name);
  if (r) fillDial(r);
  for (const tr of $("routes").tBodies[0].rows) {
    tr.classList.toggle("selected", tr.dataset.route === name);
    tr.setAttribute("aria-selected", String(tr.dataset.route === name));
  }
  refreshDetail().catch(readFailed);
}

function fillDial(r) {
  $("dial-share").value = number(r.share_percent);
  $("dial-mode").value = r.mode;
}

function drawTrend(t) {
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

const escapePointer = (key) => String(key).replace(/~/g, "~0").replace(/\//g, "~1");

// Pretty-prints `value` into `parent` as 2-space JSON; the value at each pointer in `diffs`
// (with its key) goes inside <mark class="diff" data-pointer>.
function prettyInto(parent, value, pointer, depth, prefix, diffs) {
  let target = parent;
  if (diffs.has(pointer)) {
    target = el("mark", { class: "diff", "data-pointer": pointer });
    parent.append(target);
  }
  if (prefix) target.append(prefix);
  const pad = (d) => "  ".repeat(d);
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : value && typeof value === "object" ? Object.entries(value) : null;
  if (!entries) {
    target.append(JSON.stringify(value));
    return;
  }
  const [open, close] = Array.isArray(value) ? ["[", "]"] : ["{", "}"];
  if (!entries.length) {
    target.append(open + close);
    return;
  }
  target.append(`${open}\n`);
  entries.forEach(([k, v], i) => {
    target.append(pad(depth + 1));
    const key = Array.isArray(value) ? "" : `${JSON.stringify(k)}: `;
    prettyInto(target, v, `${pointer}/${escapePointer(k)}`, depth + 1, key, diffs);
    target.append(i < entries.length - 1 ? ",\n" : "\n");
  });
  target.append(pad(depth) + close);
}

function side(kind, outcome, diffs) {
  const pre = el("pre");
  if (outcome) prettyInto(pre, { status: outcome.status, body: outcome.body }, "", 0, "", diffs);
  else pre.append("(not recorded)");
  return el("div", { class: `side ${kind}` }, el("h4", {}, kind === "legacy" ? "Legacy" : "New"), pre);
}

function drawMismatches(samples) {
  const box = $("mismatches");
  if (!samples.length) {
    box.replaceChildren(el("p", { class: "muted" }, pointerFilter ? `No mismatch at ${pointerFilter} in the samples kept.` : "No mismatches in the samples kept."));
    return;
  }
  box.replaceChildren(
    ...samples.map((s) => {
      const diffs = new Set(s.diff.map((d) => d.pointer));
      const pointers = el("ul", { class: "pointers" });
      for (const d of s.diff) {
        pointers.append(el("li", { "data-pointer": d.pointer }, `${d.pointer}: ${JSON.stringify(d.legacy)} → ${JSON.stringify(d.new)}`));
      }
      return el(
        "article",
        { class: "mismatch", "data-event-id": s.event_id },
        el("header", {}, `${s.event_id} · ${when(s.at)}`),
        el("div", { class: "sides" }, side("legacy", s.legacy, diffs), side("new", s.new, diffs)),
        pointers,
      );
    }),
  );
}

function drawMissing(missing) {
  $("missing").replaceChildren(
    ...missing.map((m) => el("li", { "data-event-id": m.event_id, "data-result": m.result }, `${m.event_id} · ${m.result} · ${when(m.at)}`)),
  );
}

async function refreshDetail() {
  if (!selected) return;
  const name = selected;
  const query = new URLSearchParams({ limit: "20" });
  if (pointerFilter) query.set("pointer", pointerFilter);
  const [trend, found] = await Promise.all([api("GET", `${routePath(name)}/trend`), api("GET", `${routePath(name)}/mismatches?${query}`)]);
  if (name !== selected) return;
  drawTrend(trend);
  const mismatches = JSON.stringify([pointerFilter, found.samples]);
  if (mismatches !== shown.mismatches) {
    shown.mismatches = mismatches;
    drawMismatches(found.samples);
  }
  const missing = JSON.stringify(found.missing);
  if (missing !== shown.missing) {
    shown.missing = missing;
    drawMissing(found.missing);
  }
}

// ---- the audit trail ----

function drawAudit(entries) {
  const text = JSON.stringify(entries);
  if (text === shown.audit) return;
  shown.audit = text;
  $("audit").tBodies[0].replaceChildren(
    ...entries.map((e) =>
      el(
        "tr",
        { class: "audit-entry", "data-route": e.route },
        el("td", { "data-col": "at" }, when(e.at)),
        el("td", { "data-col": "route" }, e.route),
        el("td", { "data-col": "by" }, e.by),
        el("td", { "data-col": "change" }, `${dial(e.old)} → ${dial(e.new)}`),
        el("td", { "data-col": "reason" }, e.reason),
      ),
    ),
  );
}

// ---- refreshing ----

function readFailed(e) {
  if (!(e instanceof ApiFailure)) throw e;
  if (e.status === 401) {
    if ($("message").dataset.status !== "401") setMessage("error", 401, "The admin API needs a token to read (401): enter the token above.", "read");
  } else if (e.status === 0) {
    setMessage("error", 0, e.message, "read");
  } else {
    setMessage("error", e.status, `The admin API refused a read (${e.status}): ${e.message.replace(/\.$/, "")}.`, "read");
  }
}

async function refresh() {
  const [list, audit] = await Promise.all([api("GET", "/api/routes"), api("GET", "/api/audit?limit=20")]);
  routes = new Map(list.routes.map((r) => [r.name, r]));
  drawRoutes(list.routes);
  drawAudit(audit.entries);
  if (selected && !routes.has(selected)) selected = null;
  if (!selected) {
    const wanted = decodeURIComponent(location.hash.slice(1));
    if (wanted && routes.has(wanted)) select(wanted);
  } else {
    await refreshDetail();
  }
  clearReadMessage();
}

async function loop() {
  try {
    await refresh();
  } catch (e) {
    readFailed(e);
  }
  setTimeout(loop, REFRESH_MS);
}

// ---- the dial ----

function failed(e) {
  if (!(e instanceof ApiFailure)) throw e;
  switch (e.status) {
    case 0:
      return "The admin API did not answer.";
    case 401:
      return "The token was not accepted (401): check the token.";
    case 409:
      return "Someone changed this route first (409): the page has been refreshed; try again.";
    default:
      return `The server refused the request (${e.status}): ${e.message.replace(/\.$/, "")}.`;
  }
}

async function change(verb, suffix, fields) {
  if (!selected) {
    setMessage("error", null, "Select a route first.", "action");
    return;
  }
  const reason = $("dial-reason").value.trim();
  if (!reason) {
    setMessage("error", null, "Give a reason for the change: it is kept in the audit trail.", "action");
    $("dial-reason").focus();
    return;
  }
  const r = routes.get(selected);
  const body = { ...fields, reason };
  if (r) body.expected_version = r.version;
  try {
    const after = await api(verb, `${routePath(selected)}/${suffix}`, body);
    setMessage("ok", 200, `Applied: ${after.mode} at ${number(after.share_percent)}% (version ${after.version}).`, "action");
    routes.set(after.name, after);
    fillDial(after);
  } catch (e) {
    setMessage("error", e.status, failed(e), "action");
  }
  // The controls keep what the operator typed after a refusal; the refresh brings the version.
  try {
    await refresh();
  } catch (e) {
    readFailed(e);
  }
}

function wire() {
  // The token's form is never sent anywhere (CSP `form-action 'none'`): Enter only keeps the value.
  $("token-form").addEventListener("submit", (e) => e.preventDefault());
  const tokenInput = $("token");
  tokenInput.value = token();
  tokenInput.addEventListener("input", () => {
    if (tokenInput.value) sessionStorage.setItem(TOKEN_KEY, tokenInput.value);
    else sessionStorage.removeItem(TOKEN_KEY);
  });
  $("dial-share-apply").addEventListener("click", () => {
    const raw = $("dial-share").value.trim();
    const percentValue = Number(raw);
    if (raw === "" || !Number.isFinite(percentValue)) {
      setMessage("error", null, "Enter a share from 0 to 100.", "action");
      return;
    }
    change("PUT", "share", { percent: percentValue });
  });
  $("dial-mode-apply").addEventListener("click", () => change("PUT", "mode", { mode: $("dial-mode").value }));
  $("rollback").addEventListener("click", () => change("POST", "rollback", {}));
  $("rollout-resume").addEventListener("click", () => change("POST", "rollout/resume", {}));
  const applyFilter = () => {
    pointerFilter = $("pointer-filter").value.trim();
    shown.mismatches = "";
    refreshDetail().catch(readFailed);
  };
  $("pointer-filter").addEventListener("keydown", (e) => {
    if (e.key === "Enter") applyFilter();
  });
  $("pointer-apply").addEventListener("click", applyFilter);
}

wire();
loop();
