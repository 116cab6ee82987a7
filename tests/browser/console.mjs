// The operator console driven in headless Debian chromium through playwright-core, against the
// DOM contract (ids and data attributes the page promises), on two replicas of one cluster.
// tests/it/console_browser.rs starts them with parity figures and runs this; it prints one JSON
// summary line and exits 0 only if every step passed, no page logged an error or warning (but
// the browser's own line for a refusal provoked on purpose), and each page asked only its own
// admin listener.
//
//   node console.mjs --admin http://127.0.0.1:A --admin-b http://127.0.0.1:B --route orders \
//     --token T --bad-token X --out DIR --expect-parity-min 0.88 --expect-parity-max 0.92 \
//     --expect-pointer /body/risk --expect-missing evt_1,evt_2 \
//     --expect-violations 35 --expect-violation-ids evt_3,evt_6 --expect-contract-pointer /country \
//     --expect-top-key cus_hot --expect-top-count 92 --lag-group order-service --expect-lag 3
//
// The --expect-violations, --expect-violation-ids and --expect-top-* figures are replica A's own
// (contract violations and keys are each replica's view); the lag is the brokers'.
import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { launch, open, q } from './session.mjs';

const required = ['admin', 'admin-b', 'route', 'token', 'bad-token', 'out', 'expect-parity-min', 'expect-parity-max', 'expect-pointer', 'expect-missing',
  'expect-violations', 'expect-violation-ids', 'expect-contract-pointer', 'expect-top-key', 'expect-top-count', 'lag-group', 'expect-lag'];
const { values: opt } = parseArgs({
  options: { ...Object.fromEntries(required.map((k) => [k, { type: 'string' }])), 'timeout-ms': { type: 'string', default: '30000' } },
});
for (const k of required) {
  if (!opt[k]) {
    console.error(`console.mjs: --${k} is required`);
    process.exit(2);
  }
}
const route = opt.route;
const [min, max] = [Number(opt['expect-parity-min']), Number(opt['expect-parity-max'])];
const pointer = opt['expect-pointer'];
const missing = opt['expect-missing'].split(',').sort();
const base = `browser test ${Date.now()}`;
// The reasons of the five changes, in the order they are made (one behind the page's back).
const reasons = {
  dial: `${base}: first step to 10%`,
  behind: `${base}: changed on replica b behind the page`,
  mode: `${base}: back to shadow with the keyboard`,
  resume: `${base}: resume the rollout`,
  rollback: `${base}: roll back`,
};
mkdirSync(opt.out, { recursive: true });

const checks = ['replicas_agree', 'pointer_highlighted', 'missing_listed', 'contract_shown', 'contract_samples',
  'skew_highlighted', 'top_keys', 'lag_shown', 'lag_growing', 'pointer_filter', 'reason_required',
  'bad_token_refused', 'refused_400', 'dialled', 'audit', 'trend_marked', 'token_in_session_storage_only',
  'other_replica_shows_the_change', 'conflict_409', 'mode_by_keyboard', 'rollout_resumed', 'rolled_back',
  'replicas_agree_after', 'narrow'];
const summary = {
  reasons: Object.values(reasons),
  parity: null,
  parity_5m: null,
  violations: null,
  skew: null,
  top_key: null,
  lag: null,
  ...Object.fromEntries(checks.map((c) => [c, false])),
  screenshots: [],
  console_errors: [],
  expected_refusals: [],
  foreign_requests: [],
  failed: null,
};

const rowSel = `#routes tbody tr[data-route=${q(route)}]`;
const cell = (col) => `${rowSel} td[data-col=${q(col)}]`;
const flagged = async (sel) => (await page.locator(`${sel}.flag`).count()) > 0;
// Each replica's own view (contract violations, skew), or refreshed by each on its own clock
// (lag): left out when the two pages are compared.
const ownView = ['contract', 'skew', 'lag'];
const percent = (t) => (/^-?\d+(\.\d+)?%$/.test(t) ? Number(t.slice(0, -1)) / 100 : NaN);
const routeApi = (admin) => `${admin}/api/routes/${encodeURIComponent(route)}`;
const auth = { Authorization: `Bearer ${opt.token}`, 'Content-Type': 'application/json' };
const version = async (admin) => (await (await fetch(routeApi(admin))).json()).version;

const browser = await launch(chromium);
const { sessions } = await open(browser, { a: opt.admin, b: opt['admin-b'] }, { out: opt.out, timeout: Number(opt['timeout-ms']), summary });
const { a, b } = sessions;
const page = a.page;

// Page a's reads of the routes list can be held, to make its copy of the route stale on cue.
let hold = null;
let inflight = 0;
const isList = (u) => new URL(u).pathname === '/api/routes';
await page.route((u) => u.pathname === '/api/routes', async (r) => {
  if (hold) await hold.promise;
  inflight += 1;
  await r.continue();
});
for (const ev of ['requestfinished', 'requestfailed']) page.on(ev, (r) => { if (isList(r.url())) inflight -= 1; });

/// Waits until replica b's page shows what replica a's shows: the route's row, the missing
/// events and the latest audit entries.
async function replicasAgree(what) {
  const seen = async (s) => s.page.evaluate(() => ({
    missing: [...document.querySelectorAll('#missing li')].map((li) => `${li.dataset.eventId} ${li.dataset.result}`).sort(),
    audit: [...document.querySelectorAll('#audit tr.audit-entry')].slice(0, 5).map((tr) => tr.textContent.trim()),
  }));
  return b.waitFor(what, async () => {
    const shared = (row) => row && Object.fromEntries(Object.entries(row).filter(([col]) => !ownView.includes(col)));
    const [ra, rb, sa, sb] = [shared(await a.row(route)), shared(await b.row(route)), await seen(a), await seen(b)];
    const both = { a: { row: ra, ...sa }, b: { row: rb, ...sb } };
    return { done: ra !== null && JSON.stringify(both.a) === JSON.stringify(both.b), seen: both };
  }, 'the two pages');
}

/// Clicks `button` on page a and returns the ok message's version, once the row shows `row`.
async function applied(button, [mode, share], expectRow) {
  const said = await a.act(() => page.click(button), 'ok');
  const m = /^Applied: (\w+) at ([\d.]+)% \(version (\d+)\)\.$/.exec(said);
  if (!m || m[1] !== mode || m[2] !== share) throw new Error(`ok message: ${q(said)}, not ${mode} at ${share}%`);
  for (const [col, want] of Object.entries(expectRow)) await a.waitText(cell(col), `${col} ${want}`, (t) => t === want);
  return m[3];
}

try {
  // 1. The routes table shows the route with the expected parity.
  await a.step('loaded', async () => {
    await page.goto(`${opt.admin}/`);
    await page.locator(rowSel).waitFor();
    const shown = await a.waitText(cell('parity-1h'), `1 h parity in [${min}, ${max}]`, (t) => percent(t) >= min && percent(t) <= max);
    summary.parity = percent(shown);
    summary.parity_5m = percent(await a.text(cell('parity-5m')));
  });

  // 2. Selecting the row (keyboard: Enter) shows a mismatch with the differing pointer marked,
  //    on both sides and in the list (the screenshot has it in the middle).
  await a.step('mismatch', async () => {
    await page.locator(rowSel).focus();
    await page.keyboard.press('Enter');
    await page.locator(`#detail[data-route=${q(route)}]`).waitFor();
    const article = page.locator('#mismatches article.mismatch', { has: page.locator(`mark.diff[data-pointer=${q(pointer)}]`) }).first();
    await article.waitFor();
    const legacy = article.locator(`.side.legacy mark.diff[data-pointer=${q(pointer)}]`);
    const fresh = article.locator(`.side.new mark.diff[data-pointer=${q(pointer)}]`);
    if ((await legacy.count()) === 0 || (await fresh.count()) === 0) throw new Error(`${pointer} not marked on both sides`);
    const [l, n] = [(await legacy.first().textContent()) ?? '', (await fresh.first().textContent()) ?? ''];
    if (l.trim() === '' || l === n) throw new Error(`marked values should differ: legacy ${q(l)}, new ${q(n)}`);
    if ((await article.locator(`ul.pointers li[data-pointer=${q(pointer)}]`).count()) === 0) throw new Error(`${pointer} not listed`);
    if (!(await article.getAttribute('data-event-id'))) throw new Error('a mismatch without data-event-id');
    await article.evaluate((e) => e.scrollIntoView({ block: 'center' }));
    summary.pointer_highlighted = true;
  });

  // 3. The events the new path never answered are listed with their ids.
  await a.step('missing', async () => {
    const items = page.locator('#missing li');
    const listed = await a.waitFor(`missing_new ${missing}`, async () => {
      const seen = (await items.evaluateAll((lis) => lis.map((li) => `${li.dataset.eventId} ${li.dataset.result}`))).sort();
      return { done: JSON.stringify(seen) === JSON.stringify(missing.map((id) => `${id} missing_new`)), seen };
    }, '#missing');
    await page.locator('#missing').scrollIntoViewIfNeeded();
    summary.missing_listed = listed.length === missing.length;
  });

  // 3b. The Kafka side. On the row: replica a's contract violations and the skew ratio above 2,
  //     both highlighted, and the lag of the service's group, growing (↑, highlighted) while the
  //     service is stopped. Below: the contract's latest samples (orders replica a flagged) with
  //     the error's pointer, the hot key first with its exact count, and the group's lag per
  //     partition adding up to its total.
  await a.step('kafka-side', async () => {
    const want = opt['expect-violations'];
    summary.violations = Number(await a.waitText(cell('contract'), `${want} violations`, (t) => t === want));
    if (!(await flagged(cell('contract')))) throw new Error('contract violations shown without the highlight');
    summary.skew = Number(await a.waitText(cell('skew'), 'a skew ratio above 2', (t) => Number(t) > 2));
    if (!(await flagged(cell('skew')))) throw new Error('a skew ratio above 2 shown without the highlight');
    summary.contract_shown = summary.skew_highlighted = true;

    const ids = new Set(opt['expect-violation-ids'].split(','));
    const samples = await a.waitFor('contract samples', async () => {
      const seen = await page.evaluate(() => [...document.querySelectorAll('#contract-samples > li[data-event-id]')]
        .map((li) => ({ id: li.dataset.eventId, pointers: [...li.querySelectorAll('li[data-pointer]')].map((p) => p.dataset.pointer) })));
      return { done: seen.length > 0, seen };
    }, '#contract-samples');
    for (const s of samples) {
      if (!ids.has(s.id)) throw new Error(`a contract sample ${s.id} that replica a did not flag`);
      if (!s.pointers.includes(opt['expect-contract-pointer'])) throw new Error(`sample ${s.id} without ${opt['expect-contract-pointer']}: ${q(s.pointers)}`);
    }
    summary.contract_samples = true;

    const [key, count] = [opt['expect-top-key'], Number(opt['expect-top-count'])];
    const keys = await a.waitFor(`${key} first with ${count} events`, async () => {
      const seen = await page.evaluate(() => [...document.querySelectorAll('#keys tbody tr')]
        .map((tr) => [tr.dataset.key, Number(tr.querySelector('td[data-col="count"]').textContent)]));
      return { done: seen.length > 0 && seen[0][0] === key && seen[0][1] === count, seen };
    }, '#keys');
    summary.top_key = keys[0];
    summary.top_keys = true;

    const [group, lag] = [opt['lag-group'], opt['expect-lag']];
    const segment = (t) => t.split(', ').find((seg) => seg.startsWith(`${group} `)) || '';
    const shown = await a.waitText(cell('lag'), `${group} ${lag} records waiting, growing`, (t) => segment(t).startsWith(`${group} ${lag} · `) && segment(t).endsWith(' s ↑'));
    if (!(await flagged(cell('lag')))) throw new Error('growing lag shown without the highlight');
    summary.lag = Number(segment(shown).split(' ')[1]);
    summary.lag_growing = true;
    await a.waitFor(`${group}'s lag per partition adds up to ${lag}`, async () => {
      const seen = await page.evaluate((g) => [...document.querySelectorAll('#lag tbody tr')].filter((tr) => tr.dataset.group === g)
        .map((tr) => [tr.dataset.partition, tr.querySelector('td[data-col="lag-records"]').textContent]), group);
      const total = seen.filter(([p]) => p === 'all').map(([, n]) => n);
      const sum = seen.filter(([p]) => p !== 'all').reduce((acc, [, n]) => acc + Number(n), 0);
      return { done: total.length === 1 && total[0] === lag && sum === Number(lag), seen };
    }, '#lag');
    await page.locator('#lag').scrollIntoViewIfNeeded();
    summary.lag_shown = true;
  });

  // 4. Replica b's page, opened on the route, shows the same figures.
  await b.step('agree', async () => {
    await b.page.goto(`${opt['admin-b']}/#${encodeURIComponent(route)}`);
    await b.page.locator(`#detail[data-route=${q(route)}]`).waitFor();
    await replicasAgree('replica b shows what replica a shows');
    summary.replicas_agree = true;
  });

  // 5. The pointer filter: a pointer nothing differs at empties the list, the right one refills it.
  await a.step('pointer-filter', async () => {
    const articles = page.locator('#mismatches article.mismatch');
    await page.fill('#pointer-filter', '/status');
    await page.press('#pointer-filter', 'Enter');
    await a.waitFor('?pointer=/status empties the list', async () => {
      const n = await articles.count();
      return { done: n === 0, seen: n };
    }, '#mismatches');
    await page.fill('#pointer-filter', pointer);
    await page.click('#pointer-apply');
    await articles.first().waitFor();
    const unmarked = await page.locator(`#mismatches article.mismatch:not(:has(mark.diff[data-pointer^=${q(pointer)}]))`).count();
    if (unmarked > 0) throw new Error(`${unmarked} mismatches shown for ${pointer} without it`);
    summary.pointer_filter = true;
  });

  // 6. No reason: the page asks for one and sends nothing. A wrong token: the 401 message, and
  //    the share stays as it was.
  const sharePuts = [];
  page.on('request', (r) => {
    if (r.method() === 'PUT' && new URL(r.url()).pathname.endsWith('/share')) sharePuts.push(r.url());
  });
  await a.step('bad-token', async () => {
    const before = await a.text(cell('share'));
    await page.fill('#token', opt['bad-token']);
    await page.fill('#dial-reason', '');
    await page.fill('#dial-share', '10');
    await a.act(() => page.click('#dial-share-apply'), 'error');
    if (sharePuts.length > 0) throw new Error(`a share change was sent without a reason: ${sharePuts}`);
    summary.reason_required = true;
    await page.fill('#dial-reason', reasons.dial);
    a.expectRefusal(route, 'share', 401);
    const said = await a.act(() => page.click('#dial-share-apply'), 'error', 401);
    if (sharePuts.length !== 1) throw new Error(`${sharePuts.length} share changes sent with the wrong token`);
    if (said !== 'The token was not accepted (401): check the token.') throw new Error(`401 message: ${q(said)}`);
    const after = await a.text(cell('share'));
    if (after !== before) throw new Error(`share changed after a 401: ${before} -> ${after}`);
    summary.bad_token_refused = true;
  });

  // 7. The right token, a share the server refuses: its reason in plain words, nothing changed.
  await a.step('refused-400', async () => {
    const before = await a.text(cell('share'));
    await page.fill('#token', opt.token);
    await page.fill('#dial-share', '150');
    a.expectRefusal(route, 'share', 400);
    const said = await a.act(() => page.click('#dial-share-apply'), 'error', 400);
    const want = 'The server refused the request (400): `percent` must be a number from 0 to 100 with at most two decimals.';
    if (said !== want) throw new Error(`400 message: ${q(said)}`);
    if ((await a.text(cell('share'))) !== before) throw new Error('share changed after a 400');
    summary.refused_400 = true;
  });

  // 8. The right token and a share: applied, the row shows 10 %, the audit list has the reason,
  //    the trend marks the change.
  await a.step('dialled', async () => {
    a.noRefusal();
    await page.fill('#dial-share', '10');
    const v = await applied('#dial-share-apply', ['split', '10'], { share: '10%', mode: 'split' });
    summary.dialled = true;
    const entry = `#audit tr.audit-entry[data-route=${q(route)}]`;
    await page.locator(entry, { has: page.locator(`td[data-col="reason"]:text-is(${q(reasons.dial)})`) }).first().waitFor();
    summary.audit = true;
    await page.locator(`svg#trend line.change[data-version=${q(v)}]`).waitFor({ state: 'attached' });
    summary.trend_marked = true;
    const stored = await page.evaluate(() => ({
      session: sessionStorage.getItem('strangler.token'),
      local: Object.keys(localStorage).map((k) => localStorage.getItem(k)),
      cookie: document.cookie,
    }));
    if (stored.session !== opt.token) throw new Error('the token is not in sessionStorage strangler.token');
    if (stored.local.some((x) => x && x.includes(opt.token)) || stored.cookie.includes(opt.token)) {
      throw new Error('the token is in localStorage or a cookie');
    }
    summary.token_in_session_storage_only = true;
  });

  // 9. Replica b's page shows the change made through replica a.
  await b.step('shows-the-change', async () => {
    await b.waitText(cell('share'), 'share 10% on replica b', (t) => t === '10%');
    await b.waitText(cell('last-change'), 'the reason on replica b', (t) => t.includes(reasons.dial));
    summary.other_replica_shows_the_change = true;
  });

  // 10. Someone changes the route through replica b while page a's copy is stale: page a's
  //     change is refused with 409 in plain words, and the page refreshes to the other change.
  await a.step('conflict-409', async () => {
    let release;
    hold = { promise: new Promise((r) => { release = r; }) };
    try {
      await a.waitFor('no routes read in flight', async () => ({ done: inflight === 0, seen: inflight }), 'page a');
      const old = await version(opt.admin);
      const put = await fetch(`${routeApi(opt['admin-b'])}/share`, { method: 'PUT', headers: auth, body: JSON.stringify({ percent: 20, reason: reasons.behind }) });
      if (put.status !== 200) throw new Error(`the change through replica b: ${put.status} ${await put.text()}`);
      await a.waitFor('replica a applies replica b\'s change', async () => {
        const v = await version(opt.admin);
        return { done: v > old, seen: v };
      }, 'GET /api/routes on replica a');
      await page.fill('#dial-share', '15');
      a.expectRefusal(route, 'share', 409);
      const said = await a.act(() => page.click('#dial-share-apply'), 'error', 409);
      if (said !== 'Someone changed this route first (409): the page has been refreshed; try again.') throw new Error(`409 message: ${q(said)}`);
    } finally {
      hold = null;
      release();
    }
    await a.waitText(cell('share'), 'the other change (20%) after the 409', (t) => t === '20%');
    await a.waitText(cell('last-change'), 'its reason', (t) => t.includes(reasons.behind));
    summary.conflict_409 = true;
  });

  // 11. The mode, with the keyboard only: Tab from the select to its button, Enter.
  await a.step('mode', async () => {
    a.noRefusal();
    await page.fill('#dial-reason', reasons.mode);
    await page.selectOption('#dial-mode', 'shadow');
    await page.focus('#dial-mode');
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
    if (focused !== 'dial-mode-apply') throw new Error(`Tab from the mode goes to #${focused}`);
    const said = await a.act(() => page.keyboard.press('Enter'), 'ok');
    if (!/^Applied: shadow at 20% \(version \d+\)\.$/.test(said)) throw new Error(`ok message: ${q(said)}`);
    await a.waitText(cell('mode'), 'mode shadow', (t) => t === 'shadow');
    summary.mode_by_keyboard = true;
  });

  // 12. Resume the rollout: from shadow it restarts in split at its first step.
  await a.step('rollout-resume', async () => {
    await page.fill('#dial-reason', reasons.resume);
    await applied('#rollout-resume', ['split', '10'], { mode: 'split', share: '10%', rollout: 'step 1/2' });
    summary.rollout_resumed = true;
  });

  // 13. Roll back: shadow at 0 %.
  await a.step('rollback', async () => {
    await page.fill('#dial-reason', reasons.rollback);
    await applied('#rollback', ['shadow', '0'], { mode: 'shadow', share: '0%' });
    const want = JSON.stringify(Object.values(reasons).reverse());
    await a.waitFor('the five changes in the audit list, newest first', async () => {
      const audited = await page.evaluate(() => [...document.querySelectorAll('#audit tr.audit-entry td[data-col="reason"]')].map((td) => td.textContent));
      return { done: JSON.stringify(audited.slice(0, 5)) === want, seen: audited };
    }, '#audit');
    summary.rolled_back = true;
  }, { fullPage: true });

  // 14. Both pages agree again, audit included.
  await b.step('agree-after', async () => {
    await replicasAgree('replica b shows the same after the changes');
    summary.replicas_agree_after = true;
  });

  // 15. Phone width: the page itself does not scroll sideways (tables scroll in their box).
  await page.setViewportSize({ width: 390, height: 844 });
  await a.step('narrow', async () => {
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    if (wide > 390) throw new Error(`the page is ${wide}px wide at 390px`);
    summary.narrow = true;
  }, { fullPage: true });
} catch {
  // summary.failed says which step and why
} finally {
  await browser.close();
}

const passed = summary.failed === null && checks.every((c) => summary[c] === true) && summary.console_errors.length === 0 && summary.foreign_requests.length === 0;
console.log(JSON.stringify(summary));
process.exit(passed ? 0 : 1);
