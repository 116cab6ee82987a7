// strangler console: small DOM helpers and the formats every part of the page shares. Text goes
// in through textContent or createElement only, never parsed as HTML.

export const DASH = "—";
const SVG = "http://www.w3.org/2000/svg";

export const $ = (id) => document.getElementById(id);

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

export function svg(tag, attrs = {}) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

export const number = (x) => String(Number(Number(x).toFixed(2)));
export const percent = (ratio) => (ratio === null || ratio === undefined ? DASH : `${(ratio * 100).toFixed(1)}%`);
export const when = (at) => (at ? `${at.slice(0, 19).replace("T", " ")} UTC` : DASH);
export const dial = (d) => (d ? `${d.mode} ${number(d.share_percent)}%` : DASH);
