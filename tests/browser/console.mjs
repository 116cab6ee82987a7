// The operator console driven in headless Debian chromium through playwright-core, against the
// DOM contract (ids and data attributes the page promises). tests/it/console_browser.rs starts a
// proxy with parity figures and runs this; it prints one JSON summary line and exits 0 only if
// every step passed, the page logged no error or warning, and it asked no host but the admin one.
//
//   node console.mjs --admin http://127.0.0.1:PORT --route orders --token T --bad-token X \
//     --out DIR --expect-parity-min 0.88 --expect-parity-max 0.92 --expect-pointer /body/risk
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const { values: opt } = parseArgs({
  options: {
    admin: { type: 'string' },
    route: { type: 'string' },
    token: { type: 'string' },
    'bad-token': { type: 'string' },
    out: { type: 'string' },
    'expect-parity-min': { type: 'string' },
    'expect-parity-max': { type: 'string' },
    'expect-pointer': { type: 'string' },
    'timeout-ms': { type: 'string', default: '30000' },
  },
});
for (const k of ['admin', 'route', 'token', 'bad-token', 'out', 'expect-parity-min', 'expect-parity-max', 'expect-pointer']) {
  if (!opt[k]) {
    console.error(`console.mjs: --${k} is required`);
    process.exit(2);
  }
}
const origin = new URL(opt.admin).origin;
const route = opt.route;
const [min, max] = [Number(opt['expect-parity-min']), Number(opt['expect-parity-max'])];
const pointer = opt['expect-pointer'];
const timeout = Number(opt['timeout-ms']);
const reason = `browser test: first step to 10% (${Date.now()})`;
mkdirSync(opt.out, { recursive: true });

const summary = {
  reason,
  parity: null,
  parity_5m: null,
  pointer_highlighted: false,
  pointer_filter: false,
  reason_required: false,
  bad_token_refused: false,
  dialled: false,
  audit: false,
  trend_marked: false,
  token_in_session_storage_only: false,
  narrow: false,
  console_errors: [],
  expected_refusals: [],
  foreign_requests: [],
  failed: null,
};

const q = (s) => JSON.stringify(s); // a CSS attribute value, quoted
const rowSel = `#routes tbody tr[data-route=${q(route)}]`;
const cell = (col) => `${rowSel} td[data-col=${q(col)}]`;

const browser = await chromium.launch({
  executablePath: process.env.STRANGLER_CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page = await context.newPage();
page.setDefaultTimeout(timeout);
// Chromium logs every answer >= 400 as "Failed to load resource"; the one the wrong-token step
// provokes on purpose (401 on the share PUT) is expected and listed apart, anything else fails.
let expectedRefusal = null;
page.on('console', (m) => {
  if (m.type() !== 'error' && m.type() !== 'warning') return;
  const url = m.location().url || '';
  const line = `${m.type()}: ${m.text()}${url ? ` (${url})` : ''}`;
  if (expectedRefusal && url === expectedRefusal.url && m.text().includes(`status of ${expectedRefusal.status} `)) {
    summary.expected_refusals.push(line);
  } else {
    summary.console_errors.push(line);
  }
});
page.on('pageerror', (e) => summary.console_errors.push(`pageerror: ${e.message}`));
context.on('request', (r) => {
  const url = new URL(r.url());
  // data: and blob: URLs are not requests to any host.
  if (url.protocol !== 'data:' && url.protocol !== 'blob:' && url.origin !== origin) summary.foreign_requests.push(r.url());
});

const sharePuts = [];
page.on('request', (r) => {
  if (r.method() === 'PUT' && new URL(r.url()).pathname.endsWith('/share')) sharePuts.push(r.url());
});

let shot = 0;
async function screenshot(step) {
  shot += 1;
  await page.screenshot({ path: path.join(opt.out, `${String(shot).padStart(2, '0')}-${step}.png`) });
}

const text = async (sel) => ((await page.locator(sel).first().textContent()) ?? '').trim();

/// Waits until `pred(text of sel)` holds; on timeout throws with what the page showed.
async function waitText(sel, what, pred) {
  const deadline = Date.now() + timeout;
  let last = null;
  for (;;) {
    if ((await page.locator(sel).count()) > 0) {
      last = await text(sel);
      if (pred(last)) return last;
    }
    if (Date.now() > deadline) throw new Error(`${what}: ${sel} shows ${q(last)}`);
    await page.waitForTimeout(100); // a poll interval under a deadline, not a synchronisation
  }
}

async function step(name, body) {
  try {
    await body();
    await screenshot(name);
  } catch (e) {
    summary.failed = { step: name, error: String(e.message || e).split('\n')[0] };
    await screenshot(`${name}-failed`).catch(() => {});
    throw e;
  }
}

const percent = (t) => (/^-?\d+(\.\d+)?%$/.test(t) ? Number(t.slice(0, -1)) / 100 : NaN);

try {
  // 1. The routes table shows the route with the expected parity.
  await step('loaded', async () => {
    await page.goto(`${opt.admin}/`);
    await page.locator(rowSel).waitFor();
    const shown = await waitText(cell('parity-1h'), `1 h parity in [${min}, ${max}]`, (t) => percent(t) >= min && percent(t) <= max);
    summary.parity = percent(shown);
    summary.parity_5m = percent(await text(cell('parity-5m')));
  });

  // 2. Selecting the row (keyboard: Enter) shows a mismatch with the differing pointer marked.
  await step('mismatch', async () => {
    await page.locator(rowSel).focus();
    await page.keyboard.press('Enter');
    await page.locator(`#detail[data-route=${q(route)}]`).waitFor();
    const article = page.locator('#mismatches article.mismatch', { has: page.locator(`mark.diff[data-pointer=${q(pointer)}]`) }).first();
    await article.waitFor();
    const legacy = article.locator(`.side.legacy mark.diff[data-pointer=${q(pointer)}]`);
    const fresh = article.locator(`.side.new mark.diff[data-pointer=${q(pointer)}]`);
    const [l, n] = [(await legacy.first().textContent()) ?? '', (await fresh.first().textContent()) ?? ''];
    if ((await legacy.count()) === 0 || (await fresh.count()) === 0) throw new Error(`${pointer} not marked on both sides`);
    if (l.trim() === '' || l === n) throw new Error(`marked values should differ: legacy ${q(l)}, new ${q(n)}`);
    if ((await article.locator(`ul.pointers li[data-pointer=${q(pointer)}]`).count()) === 0) throw new Error(`${pointer} not listed`);
    if (!(await article.getAttribute('data-event-id'))) throw new Error('a mismatch without data-event-id');
    summary.pointer_highlighted = true;
  });

  // 2b. The pointer filter: a pointer nothing differs at empties the list, the right one refills it.
  await step('pointer-filter', async () => {
    const articles = page.locator('#mismatches article.mismatch');
    await page.fill('#pointer-filter', '/status');
    await page.press('#pointer-filter', 'Enter');
    const deadline = Date.now() + timeout;
    while ((await articles.count()) > 0) {
      if (Date.now() > deadline) throw new Error(`?pointer=/status still shows ${await articles.count()} mismatches`);
      await page.waitForTimeout(100);
    }
    await page.fill('#pointer-filter', pointer);
    await page.click('#pointer-apply');
    await articles.first().waitFor();
    const unmarked = await page.locator(`#mismatches article.mismatch:not(:has(mark.diff[data-pointer^=${q(pointer)}]))`).count();
    if (unmarked > 0) throw new Error(`${unmarked} mismatches shown for ${pointer} without it`);
    summary.pointer_filter = true;
  });

  // 3. No reason: the page asks for one and sends nothing. A wrong token: the 401 message, and
  //    the share stays as it was.
  await step('bad-token', async () => {
    const before = await text(cell('share'));
    await page.fill('#token', opt['bad-token']);
    await page.fill('#dial-reason', '');
    await page.fill('#dial-share', '10');
    await page.click('#dial-share-apply');
    await page.locator('#message[data-kind="error"]').waitFor();
    if (sharePuts.length > 0) throw new Error(`a share change was sent without a reason: ${sharePuts}`);
    summary.reason_required = true;
    await page.fill('#dial-reason', reason);
    await page.fill('#dial-share', '10');
    expectedRefusal = { url: `${origin}/api/routes/${encodeURIComponent(route)}/share`, status: 401 };
    await page.click('#dial-share-apply');
    await page.locator('#message[data-kind="error"][data-status="401"]').waitFor();
    if (sharePuts.length !== 1) throw new Error(`${sharePuts.length} share changes sent with the wrong token`);
    const said = await text('#message');
    if (!said.includes('The token was not accepted (401)')) throw new Error(`401 message: ${q(said)}`);
    const after = await text(cell('share'));
    if (after !== before) throw new Error(`share changed after a 401: ${before} -> ${after}`);
    summary.bad_token_refused = true;
  });

  // 4. The right token: applied, the row shows 10 %, the audit list has the reason.
  await step('dialled', async () => {
    expectedRefusal = null;
    await page.fill('#token', opt.token);
    await page.fill('#dial-reason', reason);
    await page.fill('#dial-share', '10');
    await page.click('#dial-share-apply');
    await page.locator('#message[data-kind="ok"]').waitFor();
    const said = await text('#message');
    const applied = /^Applied: split at 10% \(version (\d+)\)\.$/.exec(said);
    if (!applied) throw new Error(`ok message: ${q(said)}`);
    await waitText(cell('share'), 'share 10%', (t) => t === '10%');
    summary.dialled = true;
    const entry = `#audit tr.audit-entry[data-route=${q(route)}]`;
    await page.locator(entry, { has: page.locator(`td[data-col="reason"]:text-is(${q(reason)})`) }).first().waitFor();
    summary.audit = true;
    await page.locator(`svg#trend line.change[data-version=${q(applied[1])}]`).waitFor({ state: 'attached' });
    summary.trend_marked = true;
    const stored = await page.evaluate(() => ({
      session: sessionStorage.getItem('strangler.token'),
      local: Object.keys(localStorage).map((k) => localStorage.getItem(k)),
      cookie: document.cookie,
    }));
    if (stored.session !== opt.token) throw new Error('the token is not in sessionStorage strangler.token');
    if (stored.local.some((v) => v && v.includes(opt.token)) || stored.cookie.includes(opt.token)) {
      throw new Error('the token is in localStorage or a cookie');
    }
    summary.token_in_session_storage_only = true;
  });

  // 5. Phone width: the page itself does not scroll sideways (the table scrolls in its box).
  await page.setViewportSize({ width: 390, height: 844 });
  await step('narrow', async () => {
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    if (wide > 390) throw new Error(`the page is ${wide}px wide at 390px`);
    summary.narrow = true;
  });
} catch {
  // summary.failed says which step and why
} finally {
  await browser.close();
}

const passed =
  summary.failed === null && summary.console_errors.length === 0 && summary.foreign_requests.length === 0;
console.log(JSON.stringify(summary));
process.exit(passed ? 0 : 1);
