// Plain SVG charts: a sparkline for the cards and a time-series line chart for the node modal.

import { h, svg } from './dom.js';
import * as fmt from './format.js';

/** Redraws a sparkline of `values` inside `el` (stretches to the element's box). */
export function sparkline(el, values) {
  if (!el) return;
  const W = 100;
  const H = 28;
  let s = el.firstChild;
  if (!s) {
    s = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', 'aria-hidden': 'true' });
    s.append(svg('path', { class: 'spark-area' }), svg('path', { class: 'spark-line', 'vector-effect': 'non-scaling-stroke' }));
    el.append(s);
  }
  if (values.length < 2) return;
  const max = Math.max(...values) || 1;
  const step = W / (values.length - 1);
  let d = '';
  values.forEach((v, i) => {
    d += `${i ? 'L' : 'M'}${(i * step).toFixed(2)},${(H - 2 - (v / max) * (H - 4)).toFixed(2)}`;
  });
  s.children[0].setAttribute('d', `${d}L${W},${H}L0,${H}Z`);
  s.children[1].setAttribute('d', d);
}

/** A round upper bound for an axis: 1, 2, 5, 10, 20, 50... */
function niceMax(v) {
  if (v <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

/**
 * A time-series chart in `el`.
 * opts: {title, points: [{t, v}] (v may be null: a gap), max (fixed axis top, e.g. 100), integer,
 *        format (value → text), color (CSS colour class suffix), empty (text when no data)}
 */
export function lineChart(el, opts) {
  const { title, points, format = String, color = 'accent', empty = 'No data' } = opts;
  const valid = points.filter((p) => p.v !== null && p.v !== undefined && !Number.isNaN(p.v));
  const last = valid.length ? valid[valid.length - 1].v : null;
  const head = h('div', { class: 'chart-head' },
    h('span', { class: 'chart-title' }, title),
    h('span', { class: 'chart-value' }, last === null ? fmt.DASH : format(last)));
  const box = h('div', { class: 'chart-box' });
  el.replaceChildren(head, box);
  el.className = `chart chart-${color}`;
  el.dataset.points = String(valid.length);
  if (valid.length < 2) {
    box.append(h('div', { class: 'chart-empty' }, valid.length ? 'Collecting samples…' : empty));
    return;
  }
  const W = Math.max(200, Math.round(box.clientWidth || el.clientWidth || 320));
  const H = 120;
  const pad = { l: 34, r: 6, t: 6, b: 18 };
  const t0 = points[0].t;
  const t1 = points[points.length - 1].t;
  const span = Math.max(1, t1 - t0);
  const peak = Math.max(...valid.map((p) => p.v));
  // Integer series (counts) get an even top so the middle line is a whole number too.
  const top = opts.max ?? (opts.integer ? Math.max(2, Math.ceil((peak * 1.1) / 2) * 2) : niceMax(peak * 1.1));
  const x = (t) => pad.l + ((t - t0) / span) * (W - pad.l - pad.r);
  const y = (v) => pad.t + (1 - Math.min(v, top) / top) * (H - pad.t - pad.b);

  const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': title });
  for (const f of [0, 0.5, 1]) {
    const gy = y(top * f);
    s.append(svg('line', { class: 'grid', x1: pad.l, x2: W - pad.r, y1: gy, y2: gy }));
    const label = svg('text', { class: 'axis', x: pad.l - 4, y: gy + 3, 'text-anchor': 'end' });
    label.textContent = format(top * f).replace(' ', '');
    s.append(label);
  }
  for (const [t, anchor] of [[t0, 'start'], [t1, 'end']]) {
    const label = svg('text', { class: 'axis', x: x(t), y: H - 4, 'text-anchor': anchor });
    label.textContent = fmt.clock(t);
    s.append(label);
  }
  // Break the line where a sample is missing or the node was silent for long (> 3 × the usual gap).
  const gaps = [];
  for (let i = 1; i < points.length; i++) gaps.push(points[i].t - points[i - 1].t);
  const usual = gaps.length ? gaps.slice().sort((a, b) => a - b)[Math.floor(gaps.length / 2)] : 0;
  const segs = [];
  let cur = [];
  points.forEach((p, i) => {
    const broken = p.v === null || p.v === undefined || (i > 0 && usual && p.t - points[i - 1].t > Math.max(3 * usual, 30000));
    if (broken && cur.length) {
      segs.push(cur);
      cur = [];
    }
    if (p.v !== null && p.v !== undefined) cur.push(p);
  });
  if (cur.length) segs.push(cur);
  const base = y(0);
  for (const seg of segs) {
    const d = seg.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join('');
    if (seg.length > 1) {
      s.append(svg('path', { class: 'area', d: `${d}L${x(seg[seg.length - 1].t).toFixed(1)},${base}L${x(seg[0].t).toFixed(1)},${base}Z` }));
    }
    s.append(seg.length > 1 ? svg('path', { class: 'line', d }) : svg('circle', { class: 'dot', r: 2, cx: x(seg[0].t), cy: y(seg[0].v) }));
  }
  // Hover: a cursor line and the nearest sample.
  const cursor = svg('line', { class: 'cursor', y1: pad.t, y2: H - pad.b, visibility: 'hidden' });
  const dot = svg('circle', { class: 'dot', r: 3, visibility: 'hidden' });
  s.append(cursor, dot);
  const tip = h('div', { class: 'chart-tip', hidden: true });
  box.append(s, tip);
  s.addEventListener('mousemove', (e) => {
    const r = s.getBoundingClientRect();
    const px = ((e.clientX - r.left) / r.width) * W;
    const t = t0 + ((px - pad.l) / (W - pad.l - pad.r)) * span;
    let best = valid[0];
    for (const p of valid) if (Math.abs(p.t - t) < Math.abs(best.t - t)) best = p;
    const bx = x(best.t);
    cursor.setAttribute('x1', bx);
    cursor.setAttribute('x2', bx);
    dot.setAttribute('cx', bx);
    dot.setAttribute('cy', y(best.v));
    cursor.setAttribute('visibility', 'visible');
    dot.setAttribute('visibility', 'visible');
    tip.hidden = false;
    tip.textContent = `${fmt.clock(best.t)}  ${format(best.v)}`;
    tip.style.left = `${Math.min(Math.max(0, (bx / W) * r.width - 40), r.width - 110)}px`;
  });
  s.addEventListener('mouseleave', () => {
    cursor.setAttribute('visibility', 'hidden');
    dot.setAttribute('visibility', 'hidden');
    tip.hidden = true;
  });
}
