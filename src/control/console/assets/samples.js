// strangler console: the mismatch explorer (both answers side by side as pretty-printed JSON,
// every differing pointer inside <mark class="diff" data-pointer>) and the missing events.

import { $, el, when } from "./dom.js";

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

export function drawMismatches(samples, pointerFilter) {
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

export function drawMissing(missing) {
  $("missing").replaceChildren(
    ...missing.map((m) => el("li", { "data-event-id": m.event_id, "data-result": m.result }, `${m.event_id} · ${m.result} · ${when(m.at)}`)),
  );
}
