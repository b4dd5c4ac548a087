// The nodes table: one keyed row per node, updated in place on live events, sorted and filtered
// on the client. Renders at most four times a second; the "last heartbeat" and "uptime" cells
// tick once a second.

import { $, h, setAttr, setText, throttle } from './dom.js';
import * as fmt from './format.js';
import { STATUS_LABEL } from './ui.js';

/** id → {node, at (Date.now() when received), row, cells} */
const entries = new Map();
const listeners = [];
let sort = { key: 'name', dir: 1 };
let filter = '';
let dirty = new Set();
let structure = true;
let onOpen = () => {};

const STATUS_ORDER = { online: 0, initializing: 1, suspect: 2, offline: 3 };

/** Live figures of a node, derived once per update. */
export function figures(n) {
  const m = n.metrics || {};
  const gpus = m.gpus || [];
  let gpuUtil = null;
  let gpuMemUsed = 0;
  let gpuMemTotal = 0;
  if (gpus.length) {
    gpuUtil = gpus.reduce((a, g) => a + (g.utilization_percent || 0), 0) / gpus.length;
    for (const g of gpus) {
      gpuMemUsed += g.memory_used_bytes || 0;
      gpuMemTotal += g.memory_total_bytes || 0;
    }
  }
  let slotsTotal = 0;
  let slotsFree = 0;
  let slotsKnown = false;
  for (const md of n.models || []) {
    if (md.state === 'ready' && md.slots_total !== null && md.slots_total !== undefined) {
      slotsKnown = true;
      slotsTotal += md.slots_total;
      slotsFree += md.slots_free ?? md.slots_total;
    }
  }
  const memTotal = m.memory_total_bytes || (n.hardware && n.hardware.memory_total_bytes) || 0;
  return {
    cpu: m.cpu_percent ?? null,
    mem: m.memory_percent ?? null,
    memUsed: m.memory_used_bytes ?? null,
    memTotal,
    gpuUtil,
    gpuMem: gpuMemTotal ? (gpuMemUsed / gpuMemTotal) * 100 : null,
    gpuMemUsed,
    gpuMemTotal,
    active: Math.max(m.active_requests || 0, n.router_in_flight || 0),
    slotsKnown,
    slotsUsed: slotsTotal - slotsFree,
    slotsTotal,
  };
}

export function address(n) {
  return (n.base_url || '').replace(/^https?:\/\//, '');
}

function secsSinceSeen(e) {
  return (e.node.last_seen_secs_ago || 0) + (Date.now() - e.at) / 1000;
}

const SORT_KEYS = {
  name: (e) => e.node.machine_name.toLowerCase(),
  address: (e) => address(e.node),
  status: (e) => STATUS_ORDER[e.node.status] ?? 9,
  cpu: (e) => e.f.cpu ?? -1,
  mem: (e) => e.f.mem ?? -1,
  gpu: (e) => e.f.gpuUtil ?? -1,
  active: (e) => e.f.active,
  slots: (e) => (e.f.slotsKnown ? e.f.slotsTotal - e.f.slotsUsed : -1),
  uptime: (e) => -(e.node.registered_at_ms || 0),
  seen: (e) => e.node.last_seen_secs_ago - e.at / 1000,
};

/** Cell layout of a row; returns the pieces updated later. */
function createRow(e) {
  const c = {
    name: h('span', { class: 'node-name' }),
    version: h('span', { class: 'muted small' }),
    address: h('td', { class: 'mono small' }),
    status: h('span', { class: 'status' }, h('i'), ''),
    draining: h('span', { class: 'pill pill-warn', hidden: true }, 'draining'),
    cpuBar: h('i'),
    cpu: h('span'),
    memBar: h('i'),
    mem: h('span'),
    memSub: h('span', { class: 'muted small' }),
    gpu: h('span'),
    gpuSub: h('span', { class: 'muted small' }),
    active: h('td', { class: 'num' }),
    slots: h('td', { class: 'num' }),
    uptime: h('td', { class: 'num muted' }),
    seen: h('td', { class: 'num' }),
  };
  const row = h('tr', { class: 'node-row', 'data-testid': 'node-row', tabindex: 0 },
    h('td', null, h('div', { class: 'stack' }, c.name, c.version)),
    c.address,
    h('td', null, c.status, ' ', c.draining),
    h('td', { class: 'num' }, h('div', { class: 'meter' }, h('span', { class: 'bar' }, c.cpuBar), c.cpu)),
    h('td', { class: 'num' }, h('div', { class: 'meter' }, h('span', { class: 'bar' }, c.memBar), c.mem), c.memSub),
    h('td', { class: 'num' }, h('div', { class: 'stack' }, c.gpu, c.gpuSub)),
    c.active,
    c.slots,
    c.uptime,
    c.seen,
  );
  row.addEventListener('click', () => onOpen(e.node.id));
  row.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') onOpen(e.node.id);
  });
  e.row = row;
  e.cells = c;
}

function level(p) {
  return p === null ? '' : p >= 90 ? 'hot' : p >= 70 ? 'warm' : '';
}

function updateRow(e) {
  const n = e.node;
  const f = e.f;
  const c = e.cells;
  const r = e.row;
  setAttr(r, 'data-node-id', n.id);
  setAttr(r, 'data-node-name', n.machine_name);
  setAttr(r, 'data-status', n.status);
  setAttr(r, 'data-draining', n.draining ? 'true' : 'false');
  r.className = `node-row row-${n.status}`;
  setText(c.name, n.machine_name);
  const rt = n.runtime && n.runtime.kind ? n.runtime.kind.replace('_', '-') : '';
  setText(c.version, [rt, n.node_version && 'v' + n.node_version].filter(Boolean).join(' · '));
  setText(c.address, address(n));
  c.status.className = `status status-${n.status}`;
  setAttr(c.status, 'data-testid', 'node-status');
  setText(c.status.lastChild, STATUS_LABEL[n.status] || n.status);
  c.draining.hidden = !n.draining;
  setText(c.cpu, fmt.pct(f.cpu));
  c.cpuBar.style.width = `${Math.min(100, f.cpu || 0)}%`;
  c.cpuBar.className = level(f.cpu);
  setText(c.mem, fmt.pct(f.mem));
  c.memBar.style.width = `${Math.min(100, f.mem || 0)}%`;
  c.memBar.className = level(f.mem);
  setText(c.memSub, f.memTotal ? `${fmt.bytes(f.memUsed)} / ${fmt.bytes(f.memTotal)}` : '');
  if (f.gpuUtil === null) {
    setText(c.gpu, fmt.DASH);
    setText(c.gpuSub, '');
  } else {
    setText(c.gpu, fmt.pct(f.gpuUtil));
    setText(c.gpuSub, `mem ${fmt.pct(f.gpuMem)} of ${fmt.bytes(f.gpuMemTotal)}`);
  }
  setText(c.active, f.active);
  setText(c.slots, f.slotsKnown ? `${f.slotsUsed} / ${f.slotsTotal}` : n.router_in_flight ? String(n.router_in_flight) : fmt.DASH);
  setAttr(c.slots, 'title', f.slotsKnown ? `${f.slotsUsed} of ${f.slotsTotal} runtime slots busy` : 'slot count not reported');
  tick(e);
}

function tick(e) {
  const n = e.node;
  setText(e.cells.uptime, n.registered_at_ms && n.status !== 'offline' ? fmt.duration((fmt.serverNow() - n.registered_at_ms) / 1000) : fmt.DASH);
  const s = secsSinceSeen(e);
  setText(e.cells.seen, fmt.ago(s));
  e.cells.seen.classList.toggle('stale', n.status !== 'offline' && s > 25);
}

function matches(e) {
  if (!filter) return true;
  const n = e.node;
  return (
    n.machine_name.toLowerCase().includes(filter) ||
    address(n).toLowerCase().includes(filter) ||
    n.status.includes(filter) ||
    (n.draining && 'draining'.includes(filter))
  );
}

const render = throttle(() => {
  const t0 = performance.now();
  for (const id of dirty) {
    const e = entries.get(id);
    if (!e) continue;
    if (!e.row) createRow(e);
    updateRow(e);
  }
  const resort = structure || (dirty.size > 0 && sort.key !== 'name' && sort.key !== 'address');
  dirty = new Set();
  if (resort) {
    structure = false;
    const key = SORT_KEYS[sort.key];
    const visible = [...entries.values()].filter(matches);
    visible.sort((a, b) => {
      const ka = key(a);
      const kb = key(b);
      return (ka < kb ? -1 : ka > kb ? 1 : 0) * sort.dir || a.node.machine_name.localeCompare(b.node.machine_name);
    });
    const body = $('#nodes-body');
    const current = body.children;
    let same = current.length === visible.length;
    for (let i = 0; same && i < visible.length; i++) same = current[i] === visible[i].row;
    if (!same) body.replaceChildren(...visible.map((e) => e.row));
    const total = entries.size;
    setText($('#nodes-count'), filter ? `${visible.length} of ${total}` : String(total));
    const empty = $('#nodes-empty');
    empty.hidden = visible.length > 0;
    setText(empty, total ? 'No node matches the filter.' : 'No nodes registered yet. Start llm-node with the enrolment token to add one.');
  }
  for (const fn of listeners) fn();
  if (!performance.getEntriesByName('llmr:nodes').length && entries.size) performance.measure('llmr:nodes', { start: t0 });
}, 250);

function touch(id) {
  dirty.add(id);
  render();
}

// --- public ------------------------------------------------------------------

export function mount(open) {
  onOpen = open;
  const thead = $('#nodes-table thead');
  thead.addEventListener('click', (ev) => {
    const th = ev.target.closest('th[data-sort]');
    if (!th) return;
    const key = th.dataset.sort;
    sort = { key, dir: sort.key === key ? -sort.dir : 1 };
    for (const x of thead.querySelectorAll('th')) x.removeAttribute('aria-sort');
    th.setAttribute('aria-sort', sort.dir > 0 ? 'ascending' : 'descending');
    structure = true;
    render();
  });
  $('#nodes-filter').addEventListener('input', (ev) => {
    filter = ev.target.value.trim().toLowerCase();
    structure = true;
    render();
  });
  setInterval(() => {
    for (const e of entries.values()) if (e.row && e.row.isConnected) tick(e);
  }, 1000);
}

/** Something to run after each render (cards, models, the modal). */
export function onRender(fn) {
  listeners.push(fn);
}

/** The full list (hello). */
export function setAll(list) {
  const ids = new Set(list.map((n) => n.id));
  for (const id of entries.keys()) if (!ids.has(id)) entries.delete(id);
  for (const n of list) upsert(n, false);
  structure = true;
  render();
}

export function upsert(n, schedule = true) {
  let e = entries.get(n.id);
  const added = !e;
  if (!e) {
    e = { node: n };
    entries.set(n.id, e);
  }
  e.node = n;
  e.at = Date.now();
  e.f = figures(n);
  dirty.add(n.id);
  if (added || n.machine_name !== e.name) structure = true;
  e.name = n.machine_name;
  if (schedule) render();
}

export function remove(id) {
  if (entries.delete(id)) {
    structure = true;
    render();
  }
}

export function get(id) {
  const e = entries.get(id);
  return e ? e.node : null;
}

export function all() {
  return [...entries.values()].map((e) => e.node);
}

/** Counts by state for the cards. */
export function counts() {
  const c = { total: 0, online: 0, initializing: 0, suspect: 0, offline: 0, draining: 0 };
  for (const { node } of entries.values()) {
    c.total++;
    c[node.status] = (c[node.status] || 0) + 1;
    if (node.draining) c.draining++;
  }
  return c;
}

export function clear() {
  entries.clear();
  structure = true;
  render();
}

export { touch };
