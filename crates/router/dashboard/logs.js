// Log viewers (the router's own log and a node's): JSON lines written by `tracing`'s JSON format,
// shown as readable lines with the level coloured. Lines that are not JSON are shown as they are.

import { h } from './dom.js';
import { get } from './api.js';

const LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'];

function fmtTime(ts) {
  if (typeof ts !== 'string') return '';
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return ts;
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

function value(v) {
  if (typeof v === 'string') return /\s/.test(v) || v === '' ? JSON.stringify(v) : v;
  return JSON.stringify(v);
}

/** One log line as an element, or null when filtered out by `minLevel`. */
export function lineElement(line, minLevel) {
  let rec = null;
  if (line.startsWith('{')) {
    try {
      rec = JSON.parse(line);
    } catch {
      rec = null;
    }
  }
  if (!rec || typeof rec !== 'object') {
    if (minLevel) return null;
    return h('div', { class: 'log-line raw' }, h('span', { class: 'log-msg' }, line));
  }
  const level = String(rec.level || '').toUpperCase();
  if (minLevel && LEVELS.indexOf(level) < LEVELS.indexOf(minLevel)) return null;
  const fields = rec.fields && typeof rec.fields === 'object' ? { ...rec.fields } : {};
  const message = fields.message ?? rec.message ?? '';
  delete fields.message;
  const extra = Object.entries(fields).map(([k, v]) => h('span', { class: 'log-kv' }, h('b', null, k), '=', value(v)));
  const span = rec.span && rec.span.name ? h('span', { class: 'log-span' }, rec.span.name) : null;
  return h('div', { class: `log-line lvl-${level.toLowerCase()}` },
    h('span', { class: 'log-time' }, fmtTime(rec.timestamp)),
    h('span', { class: 'log-level' }, level || '—'),
    h('span', { class: 'log-target' }, rec.target || ''),
    span,
    h('span', { class: 'log-msg' }, String(message)),
    extra);
}

/** Renders `text` (JSON lines) into `el`; returns the number of lines shown. */
export function renderLog(el, text, minLevel) {
  const frag = document.createDocumentFragment();
  let n = 0;
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const row = lineElement(line, minLevel);
    if (row) {
      frag.append(row);
      n++;
    }
  }
  if (!n) frag.append(h('div', { class: 'log-empty' }, text.trim() ? 'No line at this level.' : 'The log is empty.'));
  el.replaceChildren(frag);
  el.dataset.lines = String(n);
  el.dataset.state = 'loaded';
  // Scrolled to the newest line on the next frame, not here (that would force a layout now).
  requestAnimationFrame(() => {
    el.scrollTop = el.scrollHeight;
  });
  return n;
}

/** Fetches a log from `url` into `el`; shows the API's error message on failure. */
export async function loadLog(el, url, minLevel) {
  el.dataset.state = 'loading';
  el.setAttribute('aria-busy', 'true');
  try {
    const text = await get(url, { text: true });
    return renderLog(el, text || '', minLevel);
  } catch (e) {
    el.replaceChildren(h('div', { class: 'log-error', 'data-testid': 'log-error' }, e.message || String(e)));
    el.dataset.lines = '0';
    el.dataset.state = 'error';
    return 0;
  } finally {
    el.removeAttribute('aria-busy');
    el.dataset.loads = String((Number(el.dataset.loads) || 0) + 1);
  }
}
