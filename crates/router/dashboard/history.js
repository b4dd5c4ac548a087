// Request history: server-paged table with filters, page size, export links, a detail modal, and
// live rows: a finished request that matches the filters is prepended on the first page (the
// page keeps its size) and counted in the total; on other pages a hint offers the newer rows.

import { $, h, fill, setAttr, setText, throttle, debounce } from './dom.js';
import * as fmt from './format.js';
import * as api from './api.js';
import { httpClass, openDialog, toast } from './ui.js';

const st = { limit: 50, offset: 0, model: '', node: '', status: '', total: 0, items: [], newer: 0 };
let seq = 0;
let loading = null;
let buffered = [];
let pending = [];
let nodeSig = '';

function filters() {
  return { model: st.model, node: st.node, status: st.status };
}

function matches(r) {
  if (st.model && r.model !== st.model) return false;
  if (st.node && r.node_name !== st.node) return false;
  if (st.status === 'success') return r.status < 400 && !r.error;
  if (st.status === 'error') return r.status >= 400 || !!r.error;
  if (st.status) return String(r.status) === st.status;
  return true;
}

function tokens(r) {
  if (r.prompt_tokens === null && r.completion_tokens === null) return fmt.DASH;
  return `${r.prompt_tokens ?? '?'} → ${r.completion_tokens ?? '?'}`;
}

function row(r) {
  const tr = h('tr', { 'data-testid': 'history-row', tabindex: 0, dataset: { requestId: r.id, status: r.status, model: r.model } },
    h('td', { class: 'nowrap mono small', title: fmt.dateTime(r.at_ms) }, fmt.when(r.at_ms)),
    h('td', { class: 'mono' }, r.model),
    h('td', null, r.node_name || h('span', { class: 'muted' }, fmt.DASH)),
    h('td', { class: 'nowrap' }, h('span', { class: `api api-${r.api}` }, r.api), ' ', h('span', { class: 'mono small' }, r.endpoint), r.streamed ? h('span', { class: 'pill pill-muted', title: 'streamed' }, 'stream') : null),
    h('td', null, h('span', { class: `code code-${httpClass(r.status, r.error)}`, title: r.error || '' }, String(r.status))),
    h('td', { class: 'num' }, fmt.ms(r.latency_ms)),
    h('td', { class: 'num muted' }, fmt.ms(r.ttfb_ms)),
    h('td', { class: 'num muted' }, r.queue_ms ? fmt.ms(r.queue_ms) : fmt.DASH),
    h('td', { class: 'num' }, tokens(r)),
    h('td', { class: 'muted small' }, r.client || fmt.DASH));
  tr.addEventListener('click', () => openDetail(r));
  tr.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') openDetail(r);
  });
  return tr;
}

function renderMeta() {
  const total = st.total;
  const t = $('#history-total');
  setText(t, `${fmt.int(total)} ${total === 1 ? 'request' : 'requests'}`);
  setAttr(t, 'data-total', total);
  const from = total ? st.offset + 1 : 0;
  const to = Math.min(total, st.offset + st.items.length);
  setText($('#history-range'), total ? `${fmt.int(from)}–${fmt.int(to)} of ${fmt.int(total)}` : '');
  const pages = Math.max(1, Math.ceil(total / st.limit));
  setText($('#history-page'), `Page ${fmt.int(Math.floor(st.offset / st.limit) + 1)} of ${fmt.int(pages)}`);
  $('#history-prev').disabled = st.offset === 0;
  $('#history-first').disabled = st.offset === 0;
  $('#history-next').disabled = st.offset + st.limit >= total;
  const hint = $('#history-new');
  hint.hidden = st.newer === 0;
  setText(hint, `${st.newer} newer ${st.newer === 1 ? 'request' : 'requests'} — show`);
  const empty = $('#history-empty');
  empty.hidden = st.items.length > 0;
  setText(empty, st.model || st.node || st.status ? 'No request matches these filters.' : 'No request yet. Send one to /v1/chat/completions and it shows here.');
}

function renderRows() {
  fill($('#history-body'), st.items.map(row));
  renderMeta();
}

function exportLinks() {
  const f = filters();
  $('#export-csv').href = '/api/requests/export' + api.query({ format: 'csv', ...f });
  $('#export-jsonl').href = '/api/requests/export' + api.query({ format: 'jsonl', ...f });
}

export async function load() {
  const my = ++seq;
  buffered = [];
  pending = [];
  const table = $('#history-table');
  table.setAttribute('aria-busy', 'true');
  exportLinks();
  const p = api.get('/api/requests' + api.query({ limit: st.limit, offset: st.offset, ...filters() }));
  loading = p;
  try {
    const page = await p;
    if (my !== seq) return;
    st.total = page.total;
    st.items = page.items || [];
    st.newer = 0;
    // Rows that finished while the page was loading.
    const have = new Set(st.items.map((r) => r.id));
    const late = buffered.filter((r) => !have.has(r.id) && matches(r));
    buffered = [];
    pending = [];
    performance.mark('llmr:history');
    renderRows();
    for (const r of late) onRequest(r);
  } catch (e) {
    if (my !== seq || e.status === 401) return;
    toast(`History: ${e.message}`, 'error');
  } finally {
    if (my === seq) {
      loading = null;
      table.removeAttribute('aria-busy');
    }
  }
}

const flush = throttle(() => {
  if (!pending.length) return;
  const body = $('#history-body');
  const rows = pending.map((r) => {
    const tr = row(r);
    tr.classList.add('fresh');
    return tr;
  });
  pending = [];
  body.prepend(...rows);
  while (body.children.length > st.limit) body.lastElementChild.remove();
  renderMeta();
}, 250);

/** A `request` frame. */
export function onRequest(r) {
  if (loading) {
    buffered.push(r);
    return;
  }
  if (!matches(r)) return;
  st.total++;
  if (st.offset === 0) {
    st.items.unshift(r);
    if (st.items.length > st.limit) st.items.length = st.limit;
    pending.unshift(r);
    if (pending.length > st.limit) pending.length = st.limit;
  } else {
    st.newer++;
  }
  flush();
}

// --- detail ----------------------------------------------------------------------

function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** How the node was chosen: policy, why, expected reuse, among how many, after how many tries. */
function routing(x) {
  if (!x) return fmt.DASH;
  const parts = [x.policy + (x.reason ? ` · ${x.reason.replace('_', ' ')}` : '')];
  if (x.predicted_cached_tokens !== null && x.predicted_cached_tokens !== undefined) {
    parts.push(`expected ${fmt.int(x.predicted_cached_tokens)} cached tokens`);
  }
  parts.push(`${x.candidates} candidate${x.candidates === 1 ? '' : 's'}`);
  if (x.attempts > 1) parts.push(`${x.attempts} attempts (failover)`);
  return parts.join(' · ');
}

function renderDetail(r) {
  const kv = (k, v, cls) => h('div', { class: 'fact' }, h('dt', null, k), h('dd', { class: cls }, v ?? fmt.DASH));
  $('#rm-title').textContent = `${r.model}`;
  $('#rm-sub').textContent = r.id;
  const body = $('#rm-body');
  fill(body,
    h('dl', { class: 'facts' },
      kv('Time', fmt.dateTime(r.at_ms)),
      kv('Status', h('span', { class: `code code-${httpClass(r.status, r.error)}` }, String(r.status))),
      kv('API', `${r.api} ${r.endpoint}`, 'mono'),
      kv('Node', r.node_name || fmt.DASH),
      kv('Latency', fmt.ms(r.latency_ms)),
      kv('Time to first byte', fmt.ms(r.ttfb_ms)),
      kv('Queued', fmt.ms(r.queue_ms)),
      kv('Tokens', tokens(r)),
      kv('Prompt from cache', r.cached_tokens === null || r.cached_tokens === undefined ? fmt.DASH
        : `${fmt.int(r.cached_tokens)} tokens${r.prompt_tokens ? ` (${fmt.ratio(r.cached_tokens / r.prompt_tokens)})` : ''}`),
      kv('Routing', routing(r.routing), 'small'),
      kv('Streamed', r.streamed ? 'yes' : 'no'),
      kv('Client', r.client || fmt.DASH, 'mono'),
      kv('Node id', r.node_id || fmt.DASH, 'mono small')),
    r.error ? h('div', { class: 'callout callout-err' }, h('b', null, 'Error: '), r.error) : null,
    h('h3', null, 'Request body'),
    r.request_body ? h('pre', { class: 'code-block' }, pretty(r.request_body)) : h('p', { class: 'muted small' }, 'Not stored (bodies are kept only with store_bodies, and shown to admins).'),
    h('h3', null, 'Response body'),
    r.response_body ? h('pre', { class: 'code-block' }, pretty(r.response_body)) : h('p', { class: 'muted small' }, 'Not stored.'));
}

async function openDetail(r) {
  renderDetail(r);
  openDialog($('#request-modal'));
  try {
    const full = await api.get(`/api/requests/${api.enc(r.id)}`);
    if ($('#rm-sub').textContent === r.id) renderDetail(full);
  } catch (e) {
    if (e.status !== 404) toast(`Request ${r.id}: ${e.message}`, 'error');
  }
}

// --- wiring ----------------------------------------------------------------------

function readFilters() {
  st.model = $('#hf-model').value.trim();
  st.node = $('#hf-node').value.trim();
  st.status = $('#hf-status').value;
  st.limit = Number($('#hf-limit').value) || 50;
  st.offset = 0;
  load();
}

export function mount() {
  const typed = debounce(readFilters, 300);
  $('#hf-model').addEventListener('input', typed);
  $('#hf-node').addEventListener('input', typed);
  $('#hf-status').addEventListener('change', readFilters);
  $('#hf-limit').addEventListener('change', readFilters);
  $('#history-filters').addEventListener('submit', (e) => {
    e.preventDefault();
    readFilters();
  });
  $('#history-prev').addEventListener('click', () => {
    st.offset = Math.max(0, st.offset - st.limit);
    load();
  });
  $('#history-first').addEventListener('click', () => {
    st.offset = 0;
    load();
  });
  $('#history-next').addEventListener('click', () => {
    if (st.offset + st.limit < st.total) {
      st.offset += st.limit;
      load();
    }
  });
  $('#history-new').addEventListener('click', () => {
    st.offset = 0;
    load();
  });
  st.limit = Number($('#hf-limit').value) || 50;
  exportLinks();
}

/** Node names for the node filter's suggestions. */
export function setNodeNames(names) {
  const sig = names.join('\n');
  if (sig === nodeSig) return;
  nodeSig = sig;
  fill($('#dl-nodes'), names.map((n) => h('option', { value: n })));
}
