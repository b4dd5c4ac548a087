// The dashboard end to end in headless Chromium, against a real router with two real nodes.
// Run by crates/e2e/tests/dashboard.rs (which sets the environment below) as
//   node tests/browser/dashboard.mjs
// Environment: ROUTER_URL ADMIN_USER ADMIN_PASSWORD API_KEY MODEL NODE_NAMES (a,b)
//   KILL_NODE_PID KILL_NODE_NAME PULL_NODE_NAME PULL_MODEL SCREENSHOT_DIR CHROMIUM
//   SKIP_PULL=1 leaves out the download step (manual runs without a throttled file server).
// One line per step; exits 0 only when every step passed.

import fs from 'node:fs';
import path from 'node:path';
import { Steps, env, launch, poll, runScript, waitIn } from './lib.mjs';

const ROUTER = env('ROUTER_URL').replace(/\/$/, '');
const ADMIN_USER = env('ADMIN_USER', 'admin');
const ADMIN_PASSWORD = env('ADMIN_PASSWORD');
const API_KEY = env('API_KEY');
const MODEL = env('MODEL');
const NODE_NAMES = env('NODE_NAMES').split(',').map((s) => s.trim()).filter(Boolean);
const KILL_PID = Number(env('KILL_NODE_PID'));
if (!Number.isInteger(KILL_PID) || KILL_PID <= 1) throw new Error(`KILL_NODE_PID must be a node's pid, got '${process.env.KILL_NODE_PID}'`);
const KILL_NAME = env('KILL_NODE_NAME');
const SKIP_PULL = process.env.SKIP_PULL === '1';
const PULL_NODE = SKIP_PULL ? '' : env('PULL_NODE_NAME');
const PULL_MODEL = SKIP_PULL ? '' : env('PULL_MODEL');
const SHOTS = env('SCREENSHOT_DIR');
const WAIT = 60000;

fs.mkdirSync(SHOTS, { recursive: true });
const shot = (name) => path.join(SHOTS, name);
const rowSel = (name) => `#nodes-body tr[data-node-name="${CSS_escape(name)}"]`;
function CSS_escape(s) {
  return s.replace(/["\\]/g, '\\$&');
}

const steps = new Steps('dashboard');
const pageErrors = [];
const consoleLines = [];
let browser;
let page;

async function noModalOpen(when) {
  const open = await page.evaluate(() =>
    [...document.querySelectorAll('dialog')].filter((d) => d.open || d.getBoundingClientRect().height > 0).map((d) => d.id));
  if (open.length) throw new Error(`a modal is open ${when}: ${open.join(', ')}`);
}

async function cardValue(testid) {
  return page.evaluate((id) => {
    const v = document.querySelector(`[data-testid="${id}-value"]`);
    return v && v.dataset.value !== '' && v.dataset.value !== undefined ? Number(v.dataset.value) : null;
  }, testid);
}

async function chat(i) {
  const res = await fetch(`${ROUTER}/v1/chat/completions`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: `Say hello (${i})` }] }),
  });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`chat completion ${i} answered ${res.status}: ${body.slice(0, 300)}`);
}

async function main() {
  browser = await launch();
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    consoleLines.push(`${m.type()}: ${m.text()}`);
    if (consoleLines.length > 50) consoleLines.shift();
  });

  await steps.run('login page shown, no modal open after load', async () => {
    await page.goto(`${ROUTER}/dashboard`);
    await page.waitForSelector('[data-testid="login-form"]', { state: 'visible', timeout: WAIT });
    await noModalOpen('after load');
    await page.screenshot({ path: shot('login.png') });
  });

  await steps.run('log in through the form', async () => {
    await page.fill('[data-testid="login-username"]', ADMIN_USER);
    await page.fill('[data-testid="login-password"]', ADMIN_PASSWORD);
    await page.click('[data-testid="login-submit"]');
    await waitIn(page, 'the dashboard after login (or an error under the form)', () =>
      !document.querySelector('#app-view').hidden || !document.querySelector('#login-error').hidden, null, WAIT);
    const error = await page.evaluate(() => {
      const e = document.querySelector('#login-error');
      return e.hidden ? null : e.textContent;
    });
    if (error) throw new Error(`login refused: ${error}`);
    await waitIn(page, 'the live connection (ws-status live)', () =>
      document.querySelector('[data-testid="ws-status"]').dataset.state === 'live', null, WAIT);
    await noModalOpen('after login');
    const role = await page.evaluate(() => document.body.dataset.role);
    if (role !== 'admin') throw new Error(`logged in with role '${role}', expected admin`);
  });

  await steps.run(`both nodes online in the table (${NODE_NAMES.join(', ')})`, async () => {
    await waitIn(page, `rows of ${NODE_NAMES.join(', ')} with status online`, (names) =>
      names.every((n) => {
        const row = [...document.querySelectorAll('#nodes-body tr')].find((r) => r.dataset.nodeName === n);
        return row && row.dataset.status === 'online' && row.querySelector('.status').textContent.includes('online');
      }), NODE_NAMES, WAIT);
    await page.evaluate(() => {
      window.__noReload = 1;
    });
  });

  let before;
  await steps.run('3 chat completions show in the cards and the history without reload', async () => {
    await waitIn(page, 'the requests-total card and the history total', () => {
      const v = document.querySelector('[data-testid="card-requests-total-value"]');
      const t = document.querySelector('[data-testid="history-total"]');
      return v && v.dataset.value !== undefined && v.dataset.value !== '' && t && t.dataset.total !== undefined;
    }, null, WAIT);
    before = {
      card: await cardValue('card-requests-total'),
      total: await page.evaluate(() => Number(document.querySelector('[data-testid="history-total"]').dataset.total)),
      ids: await page.evaluate(() => [...document.querySelectorAll('#history-body tr')].map((r) => r.dataset.requestId)),
    };
    for (let i = 1; i <= 3; i++) await chat(i);
    const answered = Date.now();
    await waitIn(page, `the requests-total card to reach ${before.card + 3}`, (want) =>
      Number(document.querySelector('[data-testid="card-requests-total-value"]').dataset.value) >= want, before.card + 3, WAIT);
    const cardAfter = Date.now() - answered;
    await waitIn(page, `the history total to reach ${before.total + 3}`, (want) =>
      Number(document.querySelector('[data-testid="history-total"]').dataset.total) >= want, before.total + 3, WAIT);
    const fresh = await waitIn(page, `3 new history rows of ${MODEL} with status 200`, ({ ids, model }) => {
      const rows = [...document.querySelectorAll('#history-body tr[data-testid="history-row"]')]
        .filter((r) => !ids.includes(r.dataset.requestId) && r.dataset.model === model && r.dataset.status === '200');
      return rows.length >= 3 && rows.length;
    }, { ids: before.ids, model: MODEL }, WAIT);
    const rowsAfter = Date.now() - answered;
    const card = await cardValue('card-requests-total');
    await page.screenshot({ path: shot('overview.png'), fullPage: true });
    await page.locator('#history').screenshot({ path: shot('history.png') });
    return `requests total ${before.card} → ${card}, ${fresh} new rows; after the last answer the card showed it in ${cardAfter} ms, the rows in ${rowsAfter} ms`;
  });

  const detailName = NODE_NAMES[0];
  await steps.run(`node detail of ${detailName}: log lines and charts`, async () => {
    await page.click(rowSel(detailName));
    await waitIn(page, 'the node modal', (n) => {
      const m = document.querySelector('[data-testid="node-modal"]');
      return m.open && m.dataset.nodeName === n;
    }, detailName, WAIT);
    const lines = await waitIn(page, 'lines in the node log', () => {
      const l = document.querySelector('[data-testid="node-log"]');
      if (l.dataset.state === 'error') throw new Error('node log: ' + l.textContent);
      return l.dataset.state === 'loaded' && Number(l.dataset.lines) > 0 && Number(l.dataset.lines);
    }, null, WAIT);
    await waitIn(page, 'the CPU and memory charts drawn (two samples or more)', () => {
      const charts = document.querySelectorAll('[data-testid="node-chart"]');
      return charts.length === 4 && [charts[0], charts[1]].every((c) => c.querySelector('svg path.line'));
    }, null, WAIT);
    await page.screenshot({ path: shot('node-detail.png') });
    return `${lines} log lines`;
  });

  await steps.run('node log Refresh reloads it', async () => {
    const loads = await page.evaluate(() => Number(document.querySelector('[data-testid="node-log"]').dataset.loads));
    await page.click('[data-testid="node-log-refresh"]');
    const lines = await waitIn(page, 'the refreshed node log', (n) => {
      const l = document.querySelector('[data-testid="node-log"]');
      return Number(l.dataset.loads) > n && l.dataset.state === 'loaded' && Number(l.dataset.lines) > 0 && Number(l.dataset.lines);
    }, loads, WAIT);
    await page.click('[data-testid="node-modal-close"]');
    await noModalOpen('after closing the node modal');
    return `${lines} log lines`;
  });

  const drainName = NODE_NAMES[0];
  await steps.run(`drain and resume ${drainName} from its detail (admin)`, async () => {
    const draining = (want) => waitIn(page, `the row of ${drainName} with draining=${want}`, ({ name, want }) => {
      const row = [...document.querySelectorAll('#nodes-body tr')].find((r) => r.dataset.nodeName === name);
      return row && row.dataset.draining === want;
    }, { name: drainName, want }, WAIT);
    await page.click(rowSel(drainName));
    await page.click('[data-testid="node-drain"]');
    await draining('true');
    await page.click('[data-testid="node-resume"]');
    await draining('false');
    await page.click('[data-testid="node-modal-close"]');
    await noModalOpen('after closing the node modal');
  });

  await steps.run('history: filter, request detail and CSV export', async () => {
    const total = () => page.evaluate(() => Number(document.querySelector('[data-testid="history-total"]').dataset.total));
    const all = await total();
    await page.fill('[data-testid="history-filter-model"]', 'no-such-model');
    await waitIn(page, 'an empty history for an unknown model', () =>
      Number(document.querySelector('[data-testid="history-total"]').dataset.total) === 0 &&
      !document.querySelector('[data-testid="history-row"]'), null, WAIT);
    await page.fill('[data-testid="history-filter-model"]', MODEL);
    const shown = await waitIn(page, `only ${MODEL} rows`, (model) => {
      const rows = [...document.querySelectorAll('[data-testid="history-row"]')];
      return rows.length > 0 && rows.every((r) => r.dataset.model === model) && rows.length;
    }, MODEL, WAIT);
    const href = await page.getAttribute('[data-testid="export-csv"]', 'href');
    if (!href.includes(`model=${encodeURIComponent(MODEL)}`)) throw new Error(`the CSV link ignores the filter: ${href}`);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="export-csv"]')]);
    const csv = fs.readFileSync(await download.path(), 'utf8').trim().split('\n');
    if (!csv[0].startsWith('id,at_ms,') || csv.length - 1 !== shown) {
      throw new Error(`the CSV has ${csv.length - 1} rows for ${shown} shown; header '${csv[0]}'`);
    }
    // A request a node answered, so its detail says how the node was chosen.
    const answered = '[data-testid="history-row"][data-status="200"]';
    const id = await page.getAttribute(answered, 'data-request-id');
    await page.click(answered);
    await waitIn(page, 'the request detail', (id) => {
      const m = document.querySelector('[data-testid="request-modal"]');
      const text = document.querySelector('[data-testid="request-detail"]').textContent;
      // How the node was chosen: the policy and the candidates it chose among.
      return m.open && m.textContent.includes(id) && text.includes('Latency') && /Routing\w+ · \d+ candidate/.test(text);
    }, id, WAIT);
    await page.click('[data-testid="request-modal-close"]');
    await page.fill('[data-testid="history-filter-model"]', '');
    await waitIn(page, 'the whole history again', (n) =>
      Number(document.querySelector('[data-testid="history-total"]').dataset.total) >= n, all, WAIT);
    await noModalOpen('after closing the request modal');
    return `${shown} ${MODEL} rows, CSV with the same ${shown} rows, detail of ${id.slice(0, 8)}…`;
  });

  if (!SKIP_PULL) {
    await steps.run(`download ${PULL_MODEL} to ${PULL_NODE} from the UI shows progress and ends ready`, async () => {
      // Record every progress value the task rows take, so quick changes between polls count.
      await page.evaluate(() => {
        window.__progress = {};
        const note = (el) => {
          if (!el.dataset || el.dataset.testid !== 'task-row') return;
          const id = el.dataset.taskId;
          const seen = (window.__progress[id] ||= { values: [], statuses: [] });
          if (el.dataset.progress !== '' && seen.values[seen.values.length - 1] !== el.dataset.progress) seen.values.push(el.dataset.progress);
          if (seen.statuses[seen.statuses.length - 1] !== el.dataset.status) seen.statuses.push(el.dataset.status);
          seen.error = el.querySelector('.task-error')?.textContent || '';
        };
        new MutationObserver((muts) => {
          for (const m of muts) {
            if (m.type === 'attributes') note(m.target);
            for (const n of m.addedNodes || []) note(n);
          }
        }).observe(document.querySelector('#tasks-list'), { subtree: true, childList: true, attributes: true, attributeFilter: ['data-progress', 'data-status'] });
      });
      const existing = await page.evaluate(() => [...document.querySelectorAll('[data-testid="task-row"]')].map((r) => r.dataset.taskId));
      await page.locator('#models').scrollIntoViewIfNeeded();
      await page.selectOption('[data-testid="pull-model"]', PULL_MODEL);
      const nodeId = await page.evaluate((name) => {
        const n = [...document.querySelectorAll('#nodes-body tr')].find((r) => r.dataset.nodeName === name);
        return n && n.dataset.nodeId;
      }, PULL_NODE);
      if (!nodeId) throw new Error(`no row for node ${PULL_NODE}`);
      await page.selectOption('[data-testid="pull-node"]', nodeId);
      await page.click('[data-testid="pull-submit"]');
      const taskId = await waitIn(page, `a new task row for ${PULL_MODEL} on ${PULL_NODE}`, ({ existing, model, node }) => {
        const r = [...document.querySelectorAll('[data-testid="task-row"]')].find((x) =>
          !existing.includes(x.dataset.taskId) && x.dataset.model === model && x.dataset.nodeName === node);
        return r && r.dataset.taskId;
      }, { existing, model: PULL_MODEL, node: PULL_NODE }, WAIT);
      let shotTaken = false;
      const trail = (seen) => `progress ${seen.values.join(' → ')}; status ${seen.statuses.join(' → ')}`;
      const final = await poll(`task ${taskId} to be ready`, async () => {
        const s = await page.evaluate((id) => {
          const r = document.querySelector(`[data-testid="task-row"][data-task-id="${id}"]`);
          const now = r ? { status: r.dataset.status, progress: r.dataset.progress, error: r.querySelector('.task-error')?.textContent || '' } : null;
          return { now, seen: window.__progress[id] || { values: [], statuses: [] } };
        }, taskId);
        const p = Number(s.now && s.now.progress);
        if (!shotTaken && s.now && s.now.progress !== '' && p > 0 && p < 100) {
          shotTaken = true;
          await page.locator('#models').screenshot({ path: shot('models.png') });
        }
        if (s.now && s.now.status === 'failed') {
          throw new Error(`the download of ${PULL_MODEL} to ${PULL_NODE} failed: ${s.now.error || s.seen.error || 'no error text'}; ${trail(s.seen)}`);
        }
        return s.now && s.now.status === 'ready' ? s : null;
      }, { timeout: WAIT, interval: 200 });
      const below = [...new Set(final.seen.values.map(Number).filter((v) => v < 100))];
      if (!shotTaken) await page.locator('#models').screenshot({ path: shot('models.png') });
      if (below.length < 2) throw new Error(`the progress bar took ${below.length} value(s) below 100 (want 2 or more): ${trail(final.seen)}`);
      return trail(final.seen);
    });
  }

  await steps.run(`killed node ${KILL_NAME} turns offline`, async () => {
    process.kill(KILL_PID, 'SIGKILL');
    const t = Date.now();
    await waitIn(page, `the row of ${KILL_NAME} to show offline`, (name) => {
      const row = [...document.querySelectorAll('#nodes-body tr')].find((r) => r.dataset.nodeName === name);
      const st = row && row.querySelector('.status');
      return row && row.dataset.status === 'offline' && st.classList.contains('status-offline') && st.textContent.includes('offline');
    }, KILL_NAME, WAIT);
    const color = await page.evaluate((name) => {
      const row = [...document.querySelectorAll('#nodes-body tr')].find((r) => r.dataset.nodeName === name);
      return getComputedStyle(row.querySelector('.status i')).backgroundColor;
    }, KILL_NAME);
    // The header counts come with the same change (a stats frame follows every node change).
    await waitIn(page, 'the offline card to count it', () =>
      Number(document.querySelector('[data-testid="card-nodes-offline"]').textContent) >= 1, null, 2000);
    return `${((Date.now() - t) / 1000).toFixed(1)} s after SIGKILL, dot ${color}`;
  });

  await steps.run('narrow window (420×900): cards wrap, no page-wide horizontal scroll', async () => {
    await page.setViewportSize({ width: 420, height: 900 });
    await page.evaluate(() => window.scrollTo(0, 0));
    // Laid out for the new width: the cards wrap onto several rows.
    await waitIn(page, 'the narrow layout', () => {
      const cards = [...document.querySelectorAll('#overview .card')];
      const rows = new Set(cards.map((c) => Math.round(c.getBoundingClientRect().top)));
      return window.innerWidth === 420 && rows.size > 1;
    }, null, WAIT);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    await page.screenshot({ path: shot('narrow.png') });
    if (overflow > 1) throw new Error(`the page is ${overflow} px wider than the window`);
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  await steps.run('dark colour scheme', async () => {
    await page.emulateMedia({ colorScheme: 'dark' });
    const bg = await waitIn(page, 'a dark background', () => {
      const bg = getComputedStyle(document.body).backgroundColor;
      const [r, g, b] = bg.match(/\d+/g).map(Number);
      return r + g + b <= 150 && bg;
    }, null, 5000);
    await page.screenshot({ path: shot('dark.png') });
    await page.emulateMedia({ colorScheme: 'light' });
    return `background ${bg}`;
  });

  await steps.run('a viewer sees the fleet but no admin actions', async () => {
    const login = await fetch(`${ROUTER}/api/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: ADMIN_USER, password: ADMIN_PASSWORD }),
    });
    const { token } = await login.json();
    const created = await fetch(`${ROUTER}/api/users`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'watcher', password: 'watcher-password', role: 'viewer' }),
    });
    if (created.status !== 201) throw new Error(`creating a viewer answered ${created.status}`);
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const viewer = await context.newPage();
      await viewer.goto(`${ROUTER}/dashboard`);
      await viewer.fill('[data-testid="login-username"]', 'watcher');
      await viewer.fill('[data-testid="login-password"]', 'watcher-password');
      await viewer.click('[data-testid="login-submit"]');
      await waitIn(viewer, 'the viewer\'s live dashboard', () =>
        document.body.dataset.role === 'viewer' && document.querySelector('[data-testid="ws-status"]').dataset.state === 'live' &&
        document.querySelectorAll('#nodes-body tr').length > 0, null, WAIT);
      await viewer.click(rowSel(NODE_NAMES[0]));
      await waitIn(viewer, 'the node modal', () => document.querySelector('[data-testid="node-modal"]').open, null, WAIT);
      for (const id of ['node-drain', 'node-resume', 'node-remove', 'pull-form']) {
        if (await viewer.locator(`[data-testid="${id}"]`).isVisible()) throw new Error(`a viewer sees ${id}`);
      }
    } finally {
      await context.close();
    }
  });

  await steps.run('no reload and no script error during the whole test', async () => {
    const mark = await page.evaluate(() => window.__noReload);
    if (mark !== 1) throw new Error('window.__noReload is gone: the page was reloaded');
    if (pageErrors.length) throw new Error(`script errors: ${pageErrors.join(' | ')}`);
  });
}

await runScript(steps, main, {
  page: () => page,
  browser: () => browser,
  notes: () => [
    ...(pageErrors.length ? [`script errors: ${pageErrors.join(' | ')}`] : []),
    ...(consoleLines.length ? [`last console lines:\n  ${consoleLines.slice(-10).join('\n  ')}`] : []),
  ],
});
