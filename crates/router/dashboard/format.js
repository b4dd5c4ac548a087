// Number, size and time formatting. All return plain strings.

export const DASH = '—';

// Plain arithmetic instead of Intl.NumberFormat: building one costs ~15 ms of start-up.
const grouped = (s) => s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
const nf0 = { format: (n) => grouped(Math.round(n).toString()) };
const nf1 = { format: (n) => grouped(n.toFixed(1)) };

export function int(n) {
  return n === null || n === undefined || Number.isNaN(n) ? DASH : nf0.format(n);
}

/** 0–1 decimals: one below 10 %, none above. */
export function pct(p) {
  if (p === null || p === undefined || Number.isNaN(p)) return DASH;
  return (Math.abs(p) < 10 && p !== 0 ? nf1.format(p) : nf0.format(p)) + ' %';
}

/** A 0..1 ratio as a percentage with one decimal (except 100 / 0). */
export function ratio(r) {
  if (r === null || r === undefined || Number.isNaN(r)) return DASH;
  const p = r * 100;
  return (p >= 99.95 || p === 0 ? nf0.format(p) : nf1.format(p)) + ' %';
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
export function bytes(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return DASH;
  let i = 0;
  let v = n;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return (i === 0 ? nf0.format(v) : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : nf0.format(v)) + ' ' + UNITS[i];
}

export function rate(bytesPerSec) {
  return bytesPerSec ? bytes(bytesPerSec) + '/s' : DASH;
}

export function ms(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return DASH;
  if (v < 10) return v.toFixed(1) + ' ms';
  if (v < 1000) return nf0.format(v) + ' ms';
  if (v < 10000) return (v / 1000).toFixed(2) + ' s';
  return (v / 1000).toFixed(v < 100000 ? 1 : 0) + ' s';
}

/** Seconds as a short duration: `42 s`, `5 min 3 s`, `3 h 12 min`, `2 d 4 h`. */
export function duration(secs) {
  if (secs === null || secs === undefined || Number.isNaN(secs)) return DASH;
  const s = Math.max(0, Math.floor(secs));
  if (s < 60) return s + ' s';
  const m = Math.floor(s / 60);
  if (m < 60) return m + ' min ' + (s % 60) + ' s';
  const hr = Math.floor(m / 60);
  if (hr < 24) return hr + ' h ' + (m % 60) + ' min';
  return Math.floor(hr / 24) + ' d ' + (hr % 24) + ' h';
}

/** Seconds ago as `just now`, `12 s ago`, `5 min ago`... */
export function ago(secs) {
  if (secs === null || secs === undefined || Number.isNaN(secs)) return DASH;
  const s = Math.max(0, secs);
  if (s < 1) return 'just now';
  if (s < 60) return Math.floor(s) + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  if (s < 86400) return Math.floor(s / 3600) + ' h ago';
  return Math.floor(s / 86400) + ' d ago';
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** Local `HH:MM:SS`. */
export function clock(atMs) {
  const d = new Date(atMs);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Local `YYYY-MM-DD HH:MM:SS`. */
export function dateTime(atMs) {
  if (!atMs) return DASH;
  const d = new Date(atMs);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(atMs)}`;
}

/** History times: the clock today, the date before. */
export function when(atMs) {
  const d = new Date(atMs);
  const now = new Date();
  return d.toDateString() === now.toDateString() ? clock(atMs) : dateTime(atMs);
}

// The router's clock as seen from here (stats frames carry `at_ms`), so uptimes are right even
// when this machine's clock is off.
let serverOffset = 0;
export function syncServerClock(serverMs) {
  if (serverMs) serverOffset = serverMs - Date.now();
}
export function serverNow() {
  return Date.now() + serverOffset;
}
