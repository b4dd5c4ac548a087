// The models panel: models ready across the fleet (aggregated from the nodes' `models`), the
// catalog with a download form for admins, and the download tasks with live progress.

import { $, h, fill, setAttr, setText, throttle } from './dom.js';
import * as fmt from './format.js';
import * as api from './api.js';
import * as nodes from './nodes.js';
import { stateClass, toast } from './ui.js';

let catalog = [];
let readyCount = new Map();
let fleetSig = '';
let pullSig = '';
const tasks = new Map(); // id → {task, el, parts}
const TASKS_SHOWN = 50;

// --- fleet aggregate -----------------------------------------------------------

/** Called after each nodes render. */
export function nodesChanged() {
  const agg = new Map();
  for (const n of nodes.all()) {
    if (n.status === 'offline') continue;
    for (const m of n.models || []) {
      let a = agg.get(m.name);
      if (!a) agg.set(m.name, (a = { ready: 0, other: {}, slots: 0, free: 0, slotsKnown: false }));
      if (m.state === 'ready') {
        a.ready++;
        if (m.slots_total !== null && m.slots_total !== undefined) {
          a.slotsKnown = true;
          a.slots += m.slots_total;
          a.free += m.slots_free ?? m.slots_total;
        }
      } else {
        a.other[m.state] = (a.other[m.state] || 0) + 1;
      }
    }
  }
  const names = [...agg.keys()].sort();
  const sig = JSON.stringify(names.map((k) => [k, agg.get(k)]));
  if (sig !== fleetSig) {
    fleetSig = sig;
    readyCount = new Map(names.map((k) => [k, agg.get(k).ready]));
    const rows = names.map((name) => {
      const a = agg.get(name);
      const other = Object.entries(a.other).map(([s, c]) => h('span', { class: `pill pill-${stateClass(s)}` }, `${c} ${s}`));
      return h('tr', { 'data-testid': 'fleet-model', dataset: { model: name, ready: a.ready } },
        h('td', { class: 'mono' }, name),
        h('td', { class: 'num' }, h('b', null, String(a.ready))),
        h('td', { class: 'num' }, a.slotsKnown ? `${a.slots - a.free} / ${a.slots}` : fmt.DASH),
        h('td', null, other.length ? other : h('span', { class: 'muted' }, fmt.DASH)));
    });
    fill($('#fleet-models-body'), rows);
    $('#fleet-models-empty').hidden = rows.length > 0;
    renderCatalog();
    const dl = $('#dl-models');
    const known = new Set([...names, ...catalog.map((c) => c.name)]);
    fill(dl, [...known].sort().map((m) => h('option', { value: m })));
  }
  renderPullNodes();
}

// --- catalog and the pull form ------------------------------------------------------

function renderCatalog() {
  const rows = catalog.map((c) =>
    h('tr', { 'data-testid': 'catalog-model', dataset: { model: c.name } },
      h('td', { class: 'mono nowrap' }, c.name),
      h('td', { class: 'muted small desc' }, c.description || ''),
      h('td', { class: 'num' }, fmt.bytes(c.size_bytes)),
      h('td', { class: 'num' }, c.recommended_gpu_memory_bytes ? fmt.bytes(c.recommended_gpu_memory_bytes) : 'CPU'),
      h('td', { class: 'num' }, String(readyCount.get(c.name) || 0)),
      h('td', { class: 'admin-only num' },
        h('button', { class: 'btn btn-sm', type: 'button', 'data-testid': 'catalog-pull', onclick: () => choose(c.name) }, 'Download…'))));
  if (!rows.length) rows.push(h('tr', null, h('td', { colspan: 6, class: 'empty' }, 'The catalog is empty.')));
  fill($('#catalog-body'), rows);
}

function choose(name) {
  $('#pull-model').value = name;
  const sel = $('#pull-node');
  sel.focus();
  sel.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
}

function renderPullNodes() {
  const list = nodes.all().filter((n) => n.status !== 'offline').sort((a, b) => a.machine_name.localeCompare(b.machine_name));
  const sig = list.map((n) => n.id + n.status).join();
  if (sig === pullSig) return;
  pullSig = sig;
  const sel = $('#pull-node');
  const keep = sel.value;
  fill(sel, list.length ? list.map((n) => h('option', { value: n.id }, `${n.machine_name}${n.status === 'online' ? '' : ` (${n.status})`}`))
    : [h('option', { value: '' }, 'no node online')]);
  if (list.some((n) => n.id === keep)) sel.value = keep;
}

export async function loadCatalog() {
  try {
    catalog = await api.get('/api/models/available');
  } catch (e) {
    if (e.status !== 401) toast(`Catalog: ${e.message}`, 'error');
    catalog = [];
  }
  fill($('#pull-model'), catalog.map((c) => h('option', { value: c.name }, c.name)));
  fleetSig = '';
  nodesChanged();
}

async function pull(ev) {
  ev.preventDefault();
  const model = $('#pull-model').value;
  const nodeId = $('#pull-node').value;
  if (!model || !nodeId) return;
  const btn = ev.submitter || $('#pull-form button');
  btn.disabled = true;
  try {
    const res = await api.post(`/api/agents/${api.enc(nodeId)}/models/pull`, { model });
    for (const t of (res && res.tasks) || []) upsert(t);
    const n = nodes.get(nodeId);
    toast(`Download of ${model} to ${n ? n.machine_name : nodeId} started`, 'ok');
  } catch (e) {
    toast(`Download refused: ${e.message}`, 'error', 7000);
  } finally {
    btn.disabled = false;
  }
}

// --- tasks ---------------------------------------------------------------------

function createTask(entry) {
  const p = {
    title: h('span', { class: 'task-title' }),
    status: h('span', { class: 'pill' }),
    age: h('span', { class: 'muted small' }),
    bar: h('i'),
    meta: h('div', { class: 'task-meta muted small' }),
    error: h('div', { class: 'task-error err small', hidden: true }),
  };
  entry.el = h('div', { class: 'task', 'data-testid': 'task-row' },
    h('div', { class: 'task-top' }, p.title, h('span', { class: 'spacer' }), p.status, p.age),
    h('div', { class: 'progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100 }, p.bar),
    p.meta, p.error);
  entry.parts = p;
}

function updateTask(entry) {
  const t = entry.task;
  const p = entry.parts;
  const el = entry.el;
  const percent = t.status === 'ready' ? 100 : t.percent ?? null;
  setAttr(el, 'data-task-id', t.id);
  setAttr(el, 'data-status', t.status);
  setAttr(el, 'data-model', t.model);
  setAttr(el, 'data-node-name', t.node_name || t.node_id);
  setAttr(el, 'data-progress', percent === null ? '' : percent.toFixed(1));
  el.className = `task task-${t.status}`;
  fill(p.title, h('span', { class: 'mono' }, t.model), h('span', { class: 'muted' }, ' → '), t.node_name || t.node_id);
  setText(p.status, t.status);
  p.status.className = `pill pill-${stateClass(t.status)}`;
  setText(p.age, fmt.ago((Date.now() - t.updated_at_ms) / 1000));
  p.bar.style.width = `${percent ?? 0}%`;
  p.bar.parentElement.classList.toggle('indeterminate', percent === null && !['ready', 'failed'].includes(t.status));
  setAttr(p.bar.parentElement, 'aria-valuenow', percent === null ? '' : percent.toFixed(0));
  const bits = [];
  if (percent !== null) bits.push(fmt.pct(percent).replace(' %', '%'));
  bits.push(t.bytes_total ? `${fmt.bytes(t.bytes_done)} / ${fmt.bytes(t.bytes_total)}` : fmt.bytes(t.bytes_done));
  if (t.status === 'downloading' && t.bytes_per_sec) bits.push(fmt.rate(t.bytes_per_sec));
  if (t.reason) bits.push(t.reason);
  setText(p.meta, bits.join(' · '));
  p.error.hidden = !t.error;
  setText(p.error, t.error || '');
}

const renderTasks = throttle(() => {
  const showFinished = $('#tasks-finished').checked;
  const list = [...tasks.values()]
    .filter((e) => showFinished || !['ready', 'failed'].includes(e.task.status))
    .sort((a, b) => b.task.created_at_ms - a.task.created_at_ms)
    .slice(0, TASKS_SHOWN);
  for (const e of list) {
    if (!e.el) createTask(e);
    if (e.dirty) {
      updateTask(e);
      e.dirty = false;
    }
  }
  const box = $('#tasks-list');
  const same = box.children.length === list.length && list.every((e, i) => box.children[i] === e.el);
  if (!same) box.replaceChildren(...list.map((e) => e.el));
  const running = [...tasks.values()].filter((e) => !['ready', 'failed'].includes(e.task.status)).length;
  setText($('#tasks-count'), running ? `${running} running` : '');
  $('#tasks-empty').hidden = list.length > 0;
}, 250);

export function upsert(task) {
  let e = tasks.get(task.id);
  if (!e) tasks.set(task.id, (e = {}));
  // A late frame must not move a task backwards.
  if (e.task && e.task.updated_at_ms > task.updated_at_ms) return;
  e.task = task;
  e.dirty = true;
  renderTasks();
}

export function setTasks(list) {
  tasks.clear();
  for (const t of list || []) upsert(t);
  renderTasks();
}

export function mount() {
  $('#pull-form').addEventListener('submit', pull);
  $('#tasks-finished').addEventListener('change', renderTasks);
  setInterval(() => {
    for (const e of tasks.values()) if (e.el && e.el.isConnected) setText(e.parts.age, fmt.ago((Date.now() - e.task.updated_at_ms) / 1000));
  }, 5000);
}
