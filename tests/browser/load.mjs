// First load of the dashboard with a big fleet and history, in headless Chromium.
//   node tests/browser/load.mjs
// Run by crates/e2e/tests/dashboard.rs (the check) and crates/e2e/benches/first_load.rs (the
// measurement), which start the fleet and set the environment below.
// Environment: ROUTER_URL ADMIN_USER ADMIN_PASSWORD CHROMIUM
//   EXPECT_NODES (default 100) EXPECT_HISTORY (default 10000)
//   SCREENSHOT_DIR: where fleet-100.png goes (none when unset)
//   BENCH_RUNS: when set, the number of cold loads to time (min / median / max printed at the end)
// Logs in through the API and puts the session cookie into a fresh browser context for each load
// (cold cache). A load passes when the nodes table shows EXPECT_NODES rows and the history shows
// its first page with a total of EXPECT_HISTORY within 30 s. Without BENCH_RUNS: one load,
// checked, not timed. With it: each load timed from navigation start until both are shown.

import fs from 'node:fs';
import path from 'node:path';
import { Steps, apiLogin, env, launch, runScript, waitIn } from './lib.mjs';

const ROUTER = env('ROUTER_URL').replace(/\/$/, '');
const ADMIN_USER = env('ADMIN_USER', 'admin');
const ADMIN_PASSWORD = env('ADMIN_PASSWORD');
const SHOTS = env('SCREENSHOT_DIR', '');
const NODES = Number(env('EXPECT_NODES', '100'));
const HISTORY = Number(env('EXPECT_HISTORY', '10000'));
const BENCH = env('BENCH_RUNS', '') !== '';
const RUNS = BENCH ? Number(env('BENCH_RUNS')) : 1;
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`BENCH_RUNS must be a positive number, got '${process.env.BENCH_RUNS}'`);

if (SHOTS) fs.mkdirSync(SHOTS, { recursive: true });
const steps = new Steps(BENCH ? 'first-load' : 'load');
let browser;
let page;

const stats = (xs) => {
  const s = xs.slice().sort((a, b) => a - b);
  return { min: s[0], median: s[Math.floor(s.length / 2)], max: s[s.length - 1] };
};
const ms = (v) => `${Math.round(v)} ms`;

async function main() {
  const cookie = await apiLogin(ROUTER, ADMIN_USER, ADMIN_PASSWORD);
  browser = await launch();
  const loads = [];
  const dcls = [];
  for (let i = 1; i <= RUNS; i++) {
    const name = BENCH ? `run ${i}: ` : '';
    await steps.run(`${name}${NODES} node rows and the history total ${HISTORY}`, async () => {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      await context.addCookies([{ name: cookie.name, value: cookie.value, url: ROUTER }]);
      page = await context.newPage();
      const errors = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${ROUTER}/dashboard`, { waitUntil: 'commit' });
      // Measured in the page: ms since navigation start when both are on screen.
      const shown = await waitIn(page, `${NODES} node rows and a history total of ${HISTORY}`, ({ nodes, history }) => {
        const rows = document.querySelectorAll('#nodes-body tr').length;
        const t = document.querySelector('[data-testid="history-total"]');
        const total = t ? Number(t.dataset.total) : 0;
        const page1 = document.querySelectorAll('#history-body tr').length;
        return rows >= nodes && total >= history && page1 > 0 && performance.now();
      }, { nodes: NODES, history: HISTORY }, 30000);
      if (errors.length) throw new Error(`script errors: ${errors.join(' | ')}`);
      if (SHOTS && i === RUNS) await page.screenshot({ path: path.join(SHOTS, 'fleet-100.png') });
      let note;
      if (BENCH) {
        const dcl = await page.evaluate(() => performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd);
        loads.push(shown);
        dcls.push(dcl);
        note = `shown at ${ms(shown)}, domContentLoaded ${ms(dcl)}`;
      }
      await context.close();
      page = null;
      return note;
    });
  }
  if (BENCH) {
    const l = stats(loads);
    const d = stats(dcls);
    console.log(`first load: min ${ms(l.min)}, median ${ms(l.median)}, max ${ms(l.max)}`);
    console.log(`domContentLoaded: min ${ms(d.min)}, median ${ms(d.median)}, max ${ms(d.max)}`);
  }
}

await runScript(steps, main, { page: () => page, browser: () => browser });
