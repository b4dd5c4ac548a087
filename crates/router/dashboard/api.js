// REST calls. The session rides on the HttpOnly cookie; an answer of 401 anywhere but the login
// ends the session in the UI (see `onUnauthorized`).

export class ApiError extends Error {
  constructor(status, message, retryAfter) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

let unauthorized = () => {};
/** Called with no argument when a request answers 401 (session expired or logged out elsewhere). */
export function onUnauthorized(fn) {
  unauthorized = fn;
}

/** The message of an error answer: OpenAI's `{"error":{"message"}}`, Ollama's `{"error":"..."}`, or text. */
async function errorMessage(res) {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text);
    const e = body && body.error;
    if (e && typeof e === 'object' && e.message) return String(e.message);
    if (typeof e === 'string') return e;
  } catch {
    /* not JSON */
  }
  return text.trim() || `${res.status} ${res.statusText}`;
}

/**
 * `request('GET', '/api/agents')` → parsed JSON (or text with `{text: true}`), throws ApiError.
 */
export async function request(method, path, { body, text = false, quiet401 = false } = {}) {
  const init = { method, credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'network error: the router cannot be reached');
  }
  if (!res.ok) {
    const message = await errorMessage(res);
    if (res.status === 401 && !quiet401) unauthorized();
    const ra = Number.parseInt(res.headers.get('Retry-After') || '', 10);
    throw new ApiError(res.status, message, Number.isFinite(ra) ? ra : undefined);
  }
  if (res.status === 204) return null;
  if (text) return res.text();
  const ct = res.headers.get('Content-Type') || '';
  return ct.includes('json') ? res.json() : res.text();
}

export const get = (path, opts) => request('GET', path, opts);
export const post = (path, body, opts) => request('POST', path, { ...opts, body });
export const del = (path, opts) => request('DELETE', path, opts);

/** `?a=1&b=x` from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? '?' + s : '';
}

export const enc = encodeURIComponent;
