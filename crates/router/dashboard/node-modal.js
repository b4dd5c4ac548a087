// The node detail modal: facts, metric charts (stored samples + live ones while open), models,
// the node's log, and the admin actions (drain, resume, remove).

import { $, h, fill, throttle } from './dom.js';
import * as fmt from './format.js';
import * as api from './api.js';
import * as nodes from './nodes.js';
import { lineChart } from './charts.js';
import { loadLog } from './logs.js';
import { confirmAction, openDialog, stateClass, statusBadge, toast } from './ui.js';

const dlg = () => $('#node-modal');
let currentId = null;
let samples = [];
let generation = 0;

const LIVE_SAMPLE_MS = 2000;

function sampleOf(node) {
  const f = nodes.figures(node);
  return {
    at_ms: fmt.serverNow(),
    cpu_percent: f.cpu,
    memory_percent: f.mem,
    gpu_percent: f.gpuUtil,
    active_requests: f.active,
  };
}

function renderHead(n) {
  fill($('#nm-title'), n.machine_name, ' ', statusBadge(n.status), n.draining ? h('span', { class: 'pill pill-warn' }, 'draining') : null);
  $('#nm-sub').textContent = nodes.address(n);
  const m = dlg();
  m.dataset.nodeId = n.id;
  m.dataset.nodeName = n.machine_name;
  m.dataset.status = n.status;
  $('#nm-drain').hidden = !!n.draining;
  $('#nm-resume').hidden = !n.draining;
}

function fact(label, value, cls) {
  return h('div', { class: 'fact' }, h('dt', null, label), h('dd', { class: cls }, value));
}

/** The share of prompt tokens the node reused, and its measured speeds. */
function cacheHits(c) {
  if (!c || c.hit_rate === null || c.hit_rate === undefined) return 'no answer said yet';
  const speeds = [
    c.prompt_tokens_per_second ? `prompt ${fmt.int(Math.round(c.prompt_tokens_per_second))} tok/s` : null,
    c.generated_tokens_per_second ? `generation ${fmt.int(Math.round(c.generated_tokens_per_second))} tok/s` : null,
  ].filter(Boolean).join(' · ');
  return `${fmt.ratio(c.hit_rate)} of ${fmt.int(c.prompt_tokens)} prompt tokens${speeds ? ` · ${speeds}` : ''}`;
}

function renderFacts(n) {
  const f = nodes.figures(n);
  const hw = n.hardware || {};
  const rt = n.runtime || {};
  const m = n.metrics || {};
  const gpus = (hw.gpus || []).map((g) => `${g.name} (${fmt.bytes(g.memory_total_bytes)})`).join(', ');
  const seen = n.last_seen_secs_ago;
  fill($('#nm-facts'),
    fact('Runtime', [rt.kind && rt.kind.replace('_', '-'), rt.version].filter(Boolean).join(' ') || fmt.DASH),
    fact('Node version', n.node_version || fmt.DASH),
    fact('CPU', `${hw.cpu_cores ?? '?'} cores · ${fmt.pct(f.cpu)}`),
    fact('Memory', `${fmt.bytes(f.memUsed)} / ${fmt.bytes(f.memTotal)} (${fmt.pct(f.mem)})`),
    fact('GPU', gpus || 'none'),
    fact('Active requests', `${f.active}${f.slotsKnown ? ` · slots ${f.slotsUsed}/${f.slotsTotal}` : ''}`),
    fact('Requests via router', `${fmt.int(n.router_requests_total)} (${fmt.int(n.router_failures_total)} failed)`),
    fact('Node avg response', fmt.ms(m.avg_response_ms)),
    fact('Prompt cache hits', cacheHits(n.router_cache)),
    fact('Registered', `${fmt.dateTime(n.registered_at_ms)} · up ${fmt.duration((fmt.serverNow() - n.registered_at_ms) / 1000)}`),
    fact('Last heartbeat', fmt.ago(seen)),
    fact('Node id', n.id, 'mono small'),
  );
}

function renderModels(n) {
  const rows = (n.models || []).map((m) =>
    h('tr', { 'data-testid': 'node-model', dataset: { model: m.name, state: m.state } },
      h('td', { class: 'mono' }, m.name),
      h('td', null, h('span', { class: `pill pill-${stateClass(m.state)}` }, m.state)),
      h('td', { class: 'num' }, m.slots_total !== null && m.slots_total !== undefined ? `${m.slots_total - (m.slots_free ?? m.slots_total)} / ${m.slots_total}` : fmt.DASH),
      h('td', { class: 'err small' }, m.error || '')));
  if (!rows.length) rows.push(h('tr', null, h('td', { colspan: 4, class: 'empty' }, 'No model on this node.')));
  fill($('#nm-models'), rows);
}

const renderCharts = throttle(() => {
  if (!currentId || !dlg().open) return;
  const pts = (key) => samples.map((s) => ({ t: s.at_ms, v: s[key] ?? null }));
  const box = $('#nm-charts');
  if (box.children.length !== 4) fill(box, [0, 1, 2, 3].map((i) => h('div', { 'data-testid': 'node-chart', dataset: { i } })));
  const [cpu, mem, gpu, act] = box.children;
  const pctf = (v) => fmt.pct(v);
  lineChart(cpu, { title: 'CPU', points: pts('cpu_percent'), max: 100, format: pctf, color: 'accent' });
  lineChart(mem, { title: 'Memory', points: pts('memory_percent'), max: 100, format: pctf, color: 'violet' });
  lineChart(gpu, { title: 'GPU', points: pts('gpu_percent'), max: 100, format: pctf, color: 'green', empty: 'No GPU on this node' });
  lineChart(act, { title: 'Active requests', points: pts('active_requests'), format: (v) => String(Math.round(v * 10) / 10), color: 'orange', integer: true });
}, 1000);

function refreshLog() {
  if (!currentId) return;
  const el = $('#nm-log');
  const id = currentId;
  loadLog(el, `/api/agents/${api.enc(id)}/logs?tail=200`).then((n) => {
    if (id === currentId) $('#nm-log-count').textContent = el.dataset.state === 'error' ? '' : `${n} lines`;
  });
}

export async function open(id) {
  const n = nodes.get(id);
  if (!n) return;
  currentId = id;
  const gen = ++generation;
  samples = [];
  renderHead(n);
  renderFacts(n);
  renderModels(n);
  fill($('#nm-charts'));
  $('#nm-charts').dataset.state = 'loading';
  $('#nm-log').replaceChildren(h('div', { class: 'log-empty' }, 'Loading…'));
  $('#nm-log').dataset.state = 'loading';
  $('#nm-log-count').textContent = '';
  openDialog(dlg());
  refreshLog();
  try {
    const hist = await api.get(`/api/agents/${api.enc(id)}/metrics/history`);
    if (gen !== generation) return;
    samples = Array.isArray(hist) ? hist.concat(samples) : samples;
  } catch (e) {
    if (gen !== generation) return;
    toast(`Metrics history: ${e.message}`, 'error');
  }
  if (!samples.length || fmt.serverNow() - samples[samples.length - 1].at_ms > LIVE_SAMPLE_MS) samples.push(sampleOf(n));
  $('#nm-charts').dataset.state = 'loaded';
  renderCharts();
}

/** A live update of some node: refresh the modal when it is the open one. */
export function nodeChanged(n) {
  if (n.id !== currentId || !dlg().open) return;
  renderHead(n);
  renderFacts(n);
  renderModels(n);
  if ($('#nm-charts').dataset.state === 'loaded') {
    const last = samples[samples.length - 1];
    if (!last || fmt.serverNow() - last.at_ms >= LIVE_SAMPLE_MS) {
      samples.push(sampleOf(n));
      renderCharts();
    }
  }
}

export function nodeLeft(id) {
  if (id === currentId && dlg().open) {
    dlg().close();
    toast('The node was removed from the fleet.', 'info');
  }
}

async function action(label, fn) {
  const n = nodes.get(currentId);
  if (!n) return;
  try {
    await fn(n);
    toast(`${label}: ${n.machine_name}`, 'ok');
  } catch (e) {
    toast(`${label} failed: ${e.message}`, 'error', 6000);
  }
}

export function mount() {
  $('#nm-log-refresh').addEventListener('click', refreshLog);
  $('#nm-drain').addEventListener('click', () =>
    action('Draining', (n) => api.post(`/api/agents/${api.enc(n.id)}/drain`)));
  $('#nm-resume').addEventListener('click', () =>
    action('Resumed', (n) => api.post(`/api/agents/${api.enc(n.id)}/resume`)));
  $('#nm-remove').addEventListener('click', async () => {
    const n = nodes.get(currentId);
    if (!n) return;
    const ok = await confirmAction(`Remove ${n.machine_name}?`,
      'The router forgets this node. It comes back if it registers again (restart its llm-node).', 'Remove node');
    if (!ok) return;
    await action('Removed', async (node) => {
      await api.del(`/api/agents/${api.enc(node.id)}`);
      dlg().close();
      nodes.remove(node.id);
    });
  });
  dlg().addEventListener('close', () => {
    currentId = null;
    generation++;
  });
  window.addEventListener('resize', () => renderCharts());
}
