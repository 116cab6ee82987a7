// strangler console: the Kafka side of a route. Its row's cells (contract violations, the skew
// ratio, the lag of the groups reading its topic) and, for the selected route, the contract's
// latest violations, the top keys and the lag per partition. Contract violations, the skew and
// the keys are the serving replica's own view; the lag is read from the brokers, the same on
// every replica. A route without a contract, without skew figures or without a lag group shows
// a dash, never an error.

import { $, DASH, el, number, when } from "./dom.js";

/// A skew ratio above this is highlighted (StranglerPartitionSkew's threshold).
export const SKEW_HIGH = 2;

// group + topic → the two latest distinct refreshes seen: { at (ms), records, seconds }.
const refreshes = new Map();
const lagKey = (group, topic) => `${group}\u0000${topic}`;

/// Remembers `GET /api/lag`'s figures, once per refresh of the server's (its `refreshed_at`).
export function noteLag(lag) {
  if (!lag || !lag.refreshed_at) return;
  const at = Date.parse(lag.refreshed_at);
  for (const g of lag.groups || []) {
    for (const t of g.topics || []) {
      const k = lagKey(g.group, t.topic);
      const seen = refreshes.get(k) || [];
      if (seen.length && seen[seen.length - 1].at === at) continue;
      refreshes.set(k, [...seen, { at, records: t.lag_records, seconds: t.lag_seconds }].slice(-2));
    }
  }
}

/// Growing: between the two latest refreshes the records waiting rose, or the oldest of them
/// aged by at least half the time between (nothing consumed); never with nothing waiting.
export function growing(group, topic) {
  const seen = refreshes.get(lagKey(group, topic)) || [];
  if (seen.length < 2) return false;
  const [before, now] = seen;
  if (now.records <= 0) return false;
  return now.records > before.records || now.seconds - before.seconds >= (now.at - before.at) / 2000;
}

/// The groups of `GET /api/lag` that read `topic`: [{ group, error, t }] (t: that topic's entry).
export function readers(lag, topic) {
  if (!lag) return [];
  return (lag.groups || []).flatMap((g) => (g.topics || []).filter((t) => t.topic === topic).map((t) => ({ group: g.group, error: g.error, t })));
}

const seconds = (s) => `${Number(s).toFixed(1)} s`;

/// The row's cells: text and whether each is highlighted.
export function kafkaCells(r, lag) {
  const contract = r.contract ? String(r.contract.violations) : DASH;
  const ratio = r.skew && r.skew.ratio !== null && r.skew.ratio !== undefined ? r.skew.ratio : null;
  const groups = readers(lag, r.topic);
  const lagText = groups.length
    ? groups.map(({ group, error, t }) => (error ? `${group} error` : `${group} ${t.lag_records} · ${seconds(t.lag_seconds)}${growing(group, t.topic) ? " ↑" : ""}`)).join(", ")
    : DASH;
  return {
    text: { contract, skew: ratio === null ? DASH : number(ratio), lag: lagText },
    flag: {
      contract: Boolean(r.contract && r.contract.violations > 0),
      skew: ratio !== null && ratio > SKEW_HIGH,
      lag: groups.some(({ group, error, t }) => !error && growing(group, t.topic)),
    },
  };
}

// ---- the selected route ----

export function drawContract(r, found) {
  const c = r.contract;
  if (!c) {
    $("contract-summary").textContent = "No contract on this route.";
    $("contract-samples").replaceChildren();
    return;
  }
  const schemas = c.schemas.map((s) => `${s.type} → ${s.schema}${s.dataschema ? ` (${s.dataschema})` : ""}`).join("; ");
  $("contract-summary").textContent = `${c.violations} violations on this replica since it started · on_invalid = ${c.on_invalid} · ${schemas}`;
  const samples = found ? found.samples : [];
  $("contract-samples").replaceChildren(
    ...(samples.length
      ? samples.map((s) =>
          el(
            "li",
            { "data-event-id": s.event_id },
            `${s.event_id} · ${s.type} · ${when(s.at)}`,
            el("ul", { class: "pointers" }, ...s.errors.map((e) => el("li", { "data-pointer": e.pointer }, `${e.pointer || "(the whole data)"}: ${e.message}`))),
          ),
        )
      : [el("li", { class: "muted" }, "No violation in the samples kept.")]),
  );
}

export function drawSkew(r, keys) {
  const s = r.skew;
  if (!s) {
    $("skew-summary").textContent = DASH;
  } else {
    const parts = (s.partitions || []).map((p) => `partition ${p.partition}: ${p.events}`).join(", ");
    $("skew-summary").textContent =
      s.ratio === null
        ? `Skew over the last ${s.window} on this replica: no events.`
        : `Skew over the last ${s.window} on this replica: ratio ${number(s.ratio)}, ${s.events} events${parts ? ` (${parts})` : ""}.`;
  }
  const rows = keys ? keys.keys : [];
  $("keys").tBodies[0].replaceChildren(
    ...rows.map((k) =>
      el("tr", { "data-key": k.key }, el("td", { "data-col": "key" }, k.key), el("td", { "data-col": "count" }, String(k.count)), el("td", { "data-col": "error" }, String(k.error))),
    ),
  );
  $("keys-note").textContent = keys ? `${keys.events} events on this replica since ${keys.since}, ${keys.capacity} keys tracked.` : "";
}

function lagRow(group, topic, partition, cols) {
  return el("tr", { "data-group": group, "data-topic": topic, "data-partition": partition }, ...Object.entries(cols).map(([col, text]) => el("td", { "data-col": col }, text)));
}

export function drawLag(r, lag) {
  const groups = readers(lag, r.topic);
  $("lag-summary").textContent = !lag
    ? DASH
    : groups.length
      ? `Refreshed every ${lag.interval}, last at ${when(lag.refreshed_at)}.`
      : `No watched consumer group reads ${r.topic}.`;
  const rows = [];
  for (const { group, error, t } of groups) {
    const total = { group, topic: t.topic, partition: "all", committed: "", end: "", "lag-records": String(t.lag_records), "lag-seconds": seconds(t.lag_seconds) };
    if (error) total["lag-records"] = `error: ${error}`;
    const tr = lagRow(group, t.topic, "all", total);
    tr.classList.toggle("flag", !error && growing(group, t.topic));
    rows.push(tr);
    for (const p of t.partitions || []) {
      rows.push(
        lagRow(group, t.topic, String(p.partition), {
          group: "",
          topic: "",
          partition: String(p.partition),
          committed: p.committed === null ? DASH : String(p.committed),
          end: String(p.end),
          "lag-records": String(p.lag_records),
          "lag-seconds": seconds(p.lag_seconds),
        }),
      );
    }
  }
  $("lag").tBodies[0].replaceChildren(...rows);
}
