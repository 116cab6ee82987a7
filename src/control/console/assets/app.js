// strangler console: the routes table, one route's trend, mismatches, Kafka side and dial, and the
// audit trail, from the admin API of the replica serving the page. Plain ES2020, no framework; every
// text goes in through textContent or createElement, never parsed as HTML; every style through
// classes (strict CSP).

import { api, ApiFailure, routePath, token, TOKEN_KEY } from "./api.js";
import { $, DASH, dial, el, number, percent, when } from "./dom.js";
import { drawContract, drawLag, drawSkew, kafkaCells, noteLag } from "./kafka.js";
import { drawMismatches, drawMissing } from "./samples.js";
import { drawTrend } from "./trend.js";

const REFRESH_MS = 3000;
let selected = null; // the selected route's name
let routes = new Map(); // name → the route as GET /api/routes gave it
let lag = null; // GET /api/lag's answer, polled with the routes (null until one arrives)
let pointerFilter = "";
let messageFrom = null; // "read" or "action": a read's message is cleared once reads work again
const shown = { mismatches: "", missing: "", audit: "", kafka: "" }; // what is on the page, to redraw on change only

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

// ---- the routes table ----

function cells(r, kafka) {
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
    contract: kafka.text.contract,
    skew: kafka.text.skew,
    lag: kafka.text.lag,
    "new-error-rate": percent(r.new_error_rate),
    guard: r.guard ? r.guard.state : DASH,
    rollout: r.rollout ? `step ${r.rollout.step === null ? 0 : r.rollout.step + 1}/${steps}` : DASH,
    // Version 0 is the file's initial state: its `at` is when the replica serving the page
    // started, not a change every replica shares, so no time is shown.
    "last-change": r.version === 0 ? `${r.by} · ${r.reason}` : `${r.by} · ${r.reason} · ${when(r.at)}`,
  };
}

function drawRoutes(list) {
  const body = $("routes").tBodies[0];
  const rows = new Map([...body.rows].map((tr) => [tr.dataset.route, tr]));
  list.forEach((r, i) => {
    let tr = rows.get(r.name);
    const kafka = kafkaCells(r, lag);
    const values = cells(r, kafka);
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
      td.classList.toggle("flag", kafka.flag[td.dataset.col] === true);
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
  shown.mismatches = shown.missing = shown.kafka = "";
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
async function refreshDetail() {
  if (!selected) return;
  const name = selected;
  const query = new URLSearchParams({ limit: "20" });
  if (pointerFilter) query.set("pointer", pointerFilter);
  const r = routes.get(name);
  // The contract's samples only for a route with a contract; the keys only with skew figures.
  const [trend, found, violations, keys] = await Promise.all([
    api("GET", `${routePath(name)}/trend`),
    api("GET", `${routePath(name)}/mismatches?${query}`),
    r && r.contract ? api("GET", `${routePath(name)}/contract-violations`) : null,
    r && r.skew ? api("GET", `${routePath(name)}/keys`) : null,
  ]);
  if (name !== selected) return;
  drawTrend(trend);
  if (r) {
    const kafka = JSON.stringify([r.contract, r.skew, r.topic, violations, keys, lag]);
    if (kafka !== shown.kafka) {
      shown.kafka = kafka;
      drawContract(r, violations);
      drawSkew(r, keys);
      drawLag(r, lag);
    }
  }
  const mismatches = JSON.stringify([pointerFilter, found.samples]);
  if (mismatches !== shown.mismatches) {
    shown.mismatches = mismatches;
    drawMismatches(found.samples, pointerFilter);
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
  // A failed lag read leaves the lag cells at a dash and is reported once the rest is drawn.
  const [list, audit, lagRead] = await Promise.all([
    api("GET", "/api/routes"),
    api("GET", "/api/audit?limit=20"),
    api("GET", "/api/lag").catch((e) => (e instanceof ApiFailure ? e : Promise.reject(e))),
  ]);
  lag = lagRead instanceof ApiFailure ? null : lagRead;
  noteLag(lag);
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
  if (lagRead instanceof ApiFailure) throw lagRead;
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
