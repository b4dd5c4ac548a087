// DOM helpers. Every piece of data goes in through textContent or attributes, never innerHTML.

/** `h('td', {class: 'num', dataset: {id}}, 'text', childNode)` → element. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const c of children) append(el, c);
  return el;
}

function append(el, c) {
  if (c === undefined || c === null || c === false) return;
  if (Array.isArray(c)) c.forEach((x) => append(el, x));
  else el.append(c instanceof Node ? c : String(c));
}

const SVG_NS = 'http://www.w3.org/2000/svg';
export function svg(tag, attrs) {
  const el = document.createElementNS(SVG_NS, tag);
  if (attrs) for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

/** Sets text only when it changed (keeps layout work down on live updates). */
export function setText(el, text) {
  const s = String(text);
  if (el.textContent !== s) el.textContent = s;
}

export function setAttr(el, name, value) {
  const s = String(value);
  if (el.getAttribute(name) !== s) el.setAttribute(name, s);
}

/** Replaces all children of `el` with `nodes` in one go. */
export function fill(el, ...nodes) {
  el.replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined && n !== false));
}

/**
 * Calls `fn` at most once per `ms`, always with the latest state. A call after a quiet spell runs
 * at the end of the current task (so calls made together are folded, and the first screen is not
 * held back by a frame); calls during the wait are folded into one run on the next frame after it.
 */
export function throttle(fn, ms) {
  let last = -Infinity;
  let pending = false;
  const run = () => {
    pending = false;
    last = performance.now();
    fn();
  };
  return function schedule() {
    if (pending) return;
    pending = true;
    const wait = last + ms - performance.now();
    if (wait <= 0) queueMicrotask(run);
    else setTimeout(() => requestAnimationFrame(run), wait);
  };
}

export function debounce(fn, ms) {
  let t = 0;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}
