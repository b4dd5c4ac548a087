// Shared helpers of the dashboard's browser tests: environment, Chromium, steps, bounded waits.
// playwright-core is loaded through require() so NODE_PATH (set by scripts/install-browser.sh)
// finds it; ES module imports ignore NODE_PATH.

import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);

export function env(name, fallback) {
  const v = process.env[name];
  if (v === undefined || v === '') {
    if (fallback !== undefined) return fallback;
    throw new Error(`environment variable ${name} is not set`);
  }
  return v;
}

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-default-apps', '--no-first-run',
  '--metrics-recording-only', '--disable-domain-reliability',
];

export async function launch() {
  let chromium;
  try {
    ({ chromium } = require('playwright-core'));
  } catch (e) {
    throw new Error(`playwright-core not found (run: eval "$(scripts/install-browser.sh)" to set NODE_PATH): ${e.message}`);
  }
  return chromium.launch({ executablePath: env('CHROMIUM', '/usr/bin/chromium'), headless: true, args: CHROMIUM_ARGS });
}

/** Runs named steps in order, one output line each; stops at the first failure. */
export class Steps {
  constructor(prefix) {
    this.prefix = prefix;
    this.passed = 0;
    this.failed = 0;
    this.t0 = Date.now();
  }

  async run(name, fn) {
    const t = Date.now();
    try {
      const note = await fn();
      this.passed++;
      console.log(`[${this.prefix}] ok   ${String(this.passed).padStart(2)} ${name} (${Date.now() - t} ms)${note ? ' — ' + note : ''}`);
    } catch (e) {
      this.failed++;
      console.log(`[${this.prefix}] FAIL ${String(this.passed + 1).padStart(2)} ${name} (${Date.now() - t} ms): ${e.message.split('\n')[0]}`);
      throw e;
    }
  }

  summary() {
    console.log(`[${this.prefix}] ${((Date.now() - this.t0) / 1000).toFixed(1)} s`);
    console.log(`${this.passed} passed, ${this.failed} failed`);
  }
}

/** Waits in the page until `fn(arg)` is truthy; fails with `what` after `timeout` ms. */
export async function waitIn(page, what, fn, arg, timeout = 30000) {
  try {
    return await (await page.waitForFunction(fn, arg, { timeout, polling: 100 })).jsonValue();
  } catch (e) {
    if (/Timeout/i.test(e.message)) throw new Error(`timed out after ${timeout / 1000} s waiting for ${what}`);
    throw e;
  }
}

/** Polls `fn()` in Node until truthy; fails with `what` after `timeout` ms. */
export async function poll(what, fn, { timeout = 30000, interval = 100 } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out after ${timeout / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** Logs in through the API; returns the session cookie as `{name, value}`. */
export async function apiLogin(routerUrl, username, password) {
  const res = await fetch(`${routerUrl}/api/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  if (!res.ok) throw new Error(`POST /api/auth/login answered ${res.status}: ${await res.text()}`);
  const cookies = res.headers.getSetCookie ? res.headers.getSetCookie() : [res.headers.get('set-cookie') || ''];
  const first = cookies.find((c) => c.includes('=') && !/Max-Age=0/i.test(c));
  if (!first) throw new Error('POST /api/auth/login set no cookie');
  const [pair] = first.split(';');
  const i = pair.indexOf('=');
  return { name: pair.slice(0, i).trim(), value: pair.slice(i + 1).trim() };
}

export function failureShot() {
  return path.join(os.tmpdir(), `llm-router-dashboard-failure-${process.pid}.png`);
}

/**
 * Runs a script's `main` and exits with 0 only when every step passed. On a failure it saves a
 * screenshot of `page()` and prints `notes()` (script errors, console lines); `browser()` is
 * always closed.
 */
export async function runScript(steps, main, { page, browser, notes = () => [] }) {
  let code = 0;
  try {
    await main();
  } catch (e) {
    code = 1;
    const p = page();
    if (p) {
      const file = failureShot();
      await p.screenshot({ path: file, fullPage: true })
        .then(() => console.log(`[${steps.prefix}] screenshot of the failure: ${file}`), () => {});
    }
    if (!steps.failed) console.log(`[${steps.prefix}] FAIL setup: ${e.message}`);
    for (const line of notes()) console.log(`[${steps.prefix}] ${line}`);
  } finally {
    const b = browser();
    if (b) await b.close().catch(() => {});
    if (!steps.failed && code) steps.failed = 1;
    steps.summary();
  }
  process.exit(code);
}
