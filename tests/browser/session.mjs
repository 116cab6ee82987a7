// One chromium page on one replica's admin listener, watched: every console error or warning
// (but the browser's own line for a refusal the test provokes on purpose), every page error and
// every request to another origin is recorded; steps take screenshots and fail with what the
// page showed. Used by console.mjs.
import path from 'node:path';

export const q = (s) => JSON.stringify(s); // a CSS attribute value, quoted

/// Launches Debian's chromium headless.
export async function launch(chromium) {
  return chromium.launch({
    executablePath: process.env.STRANGLER_CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export class Session {
  /// `name` prefixes its screenshots and findings; `summary` collects what it saw.
  constructor({ page, admin, out, timeout, name, summary }) {
    this.page = page;
    this.origin = new URL(admin).origin;
    this.admin = admin;
    this.out = out;
    this.timeout = timeout;
    this.name = name;
    this.summary = summary;
    this.shot = 0;
    this.expectedRefusal = null; // { url, status } the next "Failed to load resource" may name
    page.setDefaultTimeout(timeout);
    // Chromium logs every answer >= 400 as "Failed to load resource"; the ones a step provokes
    // on purpose are listed apart, anything else fails the run.
    page.on('console', (m) => {
      if (m.type() !== 'error' && m.type() !== 'warning') return;
      const url = m.location().url || '';
      const line = `${name}: ${m.type()}: ${m.text()}${url ? ` (${url})` : ''}`;
      const r = this.expectedRefusal;
      if (r && url === r.url && m.text().includes(`status of ${r.status} `)) summary.expected_refusals.push(line);
      else summary.console_errors.push(line);
    });
    page.on('pageerror', (e) => summary.console_errors.push(`${name}: pageerror: ${e.message}`));
    page.on('request', (r) => {
      const url = new URL(r.url());
      // data: and blob: URLs are not requests to any host.
      if (url.protocol !== 'data:' && url.protocol !== 'blob:' && url.origin !== this.origin) {
        summary.foreign_requests.push(`${name}: ${r.url()}`);
      }
    });
  }

  /// No refusal is expected from here on.
  noRefusal() {
    this.expectedRefusal = null;
  }

  /// The next refused call (`status`) to `suffix` of the route is provoked on purpose.
  expectRefusal(route, suffix, status) {
    this.expectedRefusal = { url: `${this.origin}/api/routes/${encodeURIComponent(route)}/${suffix}`, status };
  }

  async screenshot(step, fullPage = false) {
    this.shot += 1;
    const file = `${this.name}-${String(this.shot).padStart(2, '0')}-${step}.png`;
    await this.page.screenshot({ path: path.join(this.out, file), fullPage });
    this.summary.screenshots.push(file);
  }

  /// Runs `body`, then a screenshot; on failure records the step and a `-failed` screenshot.
  async step(name, body, { fullPage = false } = {}) {
    try {
      await body();
      await this.screenshot(name, fullPage);
    } catch (e) {
      this.summary.failed = { page: this.name, step: name, error: String(e.message || e).split('\n')[0] };
      await this.screenshot(`${name}-failed`, true).catch(() => {});
      throw e;
    }
  }

  async text(sel) {
    return ((await this.page.locator(sel).first().textContent()) ?? '').trim();
  }

  /// Waits until `pred(text of sel)` holds; on timeout throws with what the page showed.
  async waitText(sel, what, pred) {
    return this.waitFor(what, async () => {
      if ((await this.page.locator(sel).count()) === 0) return { done: false, seen: null };
      const seen = await this.text(sel);
      return { done: pred(seen), seen };
    }, sel);
  }

  /// Polls `probe` (-> {done, seen}) under the deadline; throws with the last `seen`.
  async waitFor(what, probe, where = '') {
    const deadline = Date.now() + this.timeout;
    for (;;) {
      const { done, seen } = await probe();
      if (done) return seen;
      if (Date.now() > deadline) throw new Error(`${what}: ${where} shows ${q(seen)}`);
      await this.page.waitForTimeout(100); // a poll interval under a deadline, not a synchronisation
    }
  }

  /// Does `act` (a click, a key) and returns the message it brings, once it is of `kind` (and
  /// `status`, if given) and is not the message shown before.
  async act(act, kind, status) {
    const before = await this.text('#message');
    const sel = status === undefined ? `#message[data-kind=${q(kind)}]` : `#message[data-kind=${q(kind)}][data-status=${q(String(status))}]`;
    await act();
    return this.waitFor(`a ${kind} message${status === undefined ? '' : ` (${status})`} after ${q(before)}`, async () => {
      const seen = await this.text('#message');
      return { done: (await this.page.locator(sel).count()) > 0 && seen !== before, seen };
    }, '#message');
  }

  /// The cells of a route's row, by column.
  async row(route) {
    return this.page.evaluate((name) => {
      const tr = [...document.querySelectorAll('#routes tbody tr')].find((r) => r.dataset.route === name);
      return tr ? Object.fromEntries([...tr.cells].map((td) => [td.dataset.col, td.textContent.trim()])) : null;
    }, route);
  }
}

/// A `Session` per page of one browser context; `names` → admin URLs.
export async function open(browser, admins, { out, timeout, summary }) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const sessions = {};
  for (const [name, admin] of Object.entries(admins)) {
    sessions[name] = new Session({ page: await context.newPage(), admin, out, timeout, name, summary });
  }
  return { context, sessions };
}
