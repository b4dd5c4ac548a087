// The header cards: fleet counts (from the live node list) and request figures (from `stats`).

import { $, h, setAttr, setText, throttle } from './dom.js';
import * as fmt from './format.js';
import { sparkline } from './charts.js';

const SPARK_POINTS = 120;
const cards = {};
const series = { rpm: [], p95: [] };
let stats = null;
let counts = null;

function card(id, label, { sub = '', spark = false, wide = false } = {}) {
  const value = h('div', { class: 'card-value', 'data-testid': `${id}-value` }, fmt.DASH);
  const subEl = h('div', { class: 'card-sub' }, sub);
  const el = h('div', { class: 'card' + (wide ? ' card-wide' : ''), 'data-testid': id },
    h('div', { class: 'card-label' }, label), value, subEl);
  const sparkEl = spark ? h('div', { class: 'card-spark' }) : null;
  if (sparkEl) el.append(sparkEl);
  cards[id] = { el, value, sub: subEl, spark: sparkEl };
  return el;
}

const NODE_STATES = ['online', 'initializing', 'suspect', 'offline', 'draining'];

function nodesCard() {
  const value = h('div', { class: 'card-value', 'data-testid': 'card-nodes-value' }, fmt.DASH);
  const bar = h('div', { class: 'stackbar' });
  const legend = h('div', { class: 'legend' });
  const parts = {};
  for (const s of NODE_STATES) {
    const n = h('b', { 'data-testid': `card-nodes-${s}` }, '0');
    const item = h('span', { class: `legend-item st-${s}`, dataset: { state: s } }, h('i'), n, ' ' + s);
    const seg = h('span', { class: `seg st-${s}` });
    legend.append(item);
    if (s !== 'draining') bar.append(seg);
    parts[s] = { n, item, seg };
  }
  const el = h('div', { class: 'card card-wide', 'data-testid': 'card-nodes' },
    h('div', { class: 'card-label' }, 'Nodes online'), value, bar, legend);
  cards.nodes = { el, value, parts };
  return el;
}

export function mount() {
  $('#overview').append(
    nodesCard(),
    card('card-requests-total', 'Requests', { sub: 'total' }),
    card('card-rpm', 'Throughput', { sub: 'requests / min', spark: true }),
    card('card-success-rate', 'Success rate', { sub: 'last hour' }),
    card('card-latency-avg', 'Avg latency', { sub: 'last hour' }),
    card('card-latency-p95', 'p95 latency', { sub: 'last hour', spark: true }),
    card('card-queue', 'Queue', { sub: 'waiting requests' }),
  );
}

function setValue(c, text, raw) {
  setText(c.value, text);
  setAttr(c.value, 'data-value', raw ?? '');
}

const render = throttle(() => {
  if (counts) {
    const c = cards.nodes;
    setValue(c, `${counts.online} / ${counts.total}`, counts.online);
    for (const s of NODE_STATES) {
      const p = c.parts[s];
      setText(p.n, counts[s]);
      // suspect and draining only when there are some
      p.item.hidden = (s === 'suspect' || s === 'draining') && !counts[s];
      if (s !== 'draining') p.seg.style.flexGrow = String(counts[s]);
    }
  }
  if (!stats) return;
  setValue(cards['card-requests-total'], fmt.int(stats.requests_total), stats.requests_total);
  const rpm = stats.requests_per_minute;
  setValue(cards['card-rpm'], rpm === null || rpm === undefined ? fmt.DASH : rpm < 10 ? rpm.toFixed(1) : fmt.int(rpm), rpm);
  const sr = cards['card-success-rate'];
  setValue(sr, fmt.ratio(stats.success_rate), stats.success_rate);
  sr.el.classList.toggle('card-bad', stats.success_rate !== null && stats.success_rate < 0.95);
  setValue(cards['card-latency-avg'], fmt.ms(stats.avg_latency_ms), stats.avg_latency_ms);
  setValue(cards['card-latency-p95'], fmt.ms(stats.p95_latency_ms), stats.p95_latency_ms);
  setValue(cards['card-queue'], fmt.int(stats.queue_depth), stats.queue_depth);
  cards['card-queue'].el.classList.toggle('card-warn', stats.queue_depth > 0);
  sparkline(cards['card-rpm'].spark, series.rpm);
  sparkline(cards['card-latency-p95'].spark, series.p95);
}, 250);

/** A `stats` frame (or the hello's). */
export function setStats(s) {
  if (!s) return;
  stats = s;
  push(series.rpm, s.requests_per_minute ?? 0);
  push(series.p95, s.p95_latency_ms ?? 0);
  render();
}

function push(arr, v) {
  arr.push(v);
  if (arr.length > SPARK_POINTS) arr.shift();
}

/** A `request` frame: the total counts it at once; the next `stats` frame brings the rest. */
export function requestFinished() {
  if (!stats) return;
  stats = { ...stats, requests_total: stats.requests_total + 1 };
  render();
}

/** Node counts by state, from the live node list. */
export function setCounts(c) {
  counts = c;
  render();
}
