// First load of the dashboard with a big fleet and history, in headless Chromium.
//   node tests/browser/load.mjs
// Environment: ROUTER_URL ADMIN_USER ADMIN_PASSWORD SCREENSHOT_DIR CHROMIUM
//   EXPECT_NODES (default 100) EXPECT_HISTORY (default 10000) RUNS (default 5)
// Logs in through the API, puts the session cookie into a fresh browser context for each run
// (cold cache), and measures from navigation start until the nodes table shows EXPECT_NODES rows
// and the history shows its first page with a total of EXPECT_HISTORY. Speed is reported, not
// asserted; the run fails only when the rows or the total do not show within 30 s.

import fs from 'node:fs';
import path from 'node:path';
import { Steps, apiLogin, env, launch, runScript, waitIn } from './lib.mjs';

const ROUTER = env('ROUTER_URL').replace(/\/$/, '');
const ADMIN_USER = env('ADMIN_USER', 'admin');
const ADMIN_PASSWORD = env('ADMIN_PASSWORD');
const SHOTS = env('SCREENSHOT_DIR');
const NODES = Number(env('EXPECT_NODES', '100'));
const HISTORY = Number(env('EXPECT_HISTORY', '10000'));
const RUNS = Number(env('RUNS', '5'));

fs.mkdirSync(SHOTS, { recursive: true });
const steps = new Steps('load');
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
    await steps.run(`run ${i}: ${NODES} node rows and the history total ${HISTORY}`, async () => {
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
      const nav = await page.evaluate(() => {
        const n = performance.getEntriesByType('navigation')[0];
        return { dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd, ttfb: n.responseStart };
      });
      loads.push(shown);
      dcls.push(nav.dcl);
      if (errors.length) throw new Error(`script errors: ${errors.join(' | ')}`);
      if (i === RUNS) await page.screenshot({ path: path.join(SHOTS, 'fleet-100.png') });
      await context.close();
      page = null;
      return `shown at ${ms(shown)}, domContentLoaded ${ms(nav.dcl)}`;
    });
  }
  const l = stats(loads);
  const d = stats(dcls);
  console.log(`first load: min ${ms(l.min)}, median ${ms(l.median)}, max ${ms(l.max)}`);
  console.log(`domContentLoaded: min ${ms(d.min)}, median ${ms(d.median)}, max ${ms(d.max)}`);
}

await runScript(steps, main, { page: () => page, browser: () => browser });
