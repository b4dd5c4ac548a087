// Entry point: session check and login, the live connection, and the wiring between panels.

import { $, setAttr, setText } from './dom.js';
import * as api from './api.js';
import * as fmt from './format.js';
import { Live } from './live.js';
import * as cards from './cards.js';
import * as nodes from './nodes.js';
import * as nodeModal from './node-modal.js';
import * as models from './models.js';
import * as history from './history.js';
import { loadLog } from './logs.js';
import { setupDialogs, toast } from './ui.js';

let user = null;
let retryTimer = 0;
let dataStarted = false;
let greeted = false;

const live = new Live({
  onMessage,
  onState(state) {
    const el = $('#ws-status');
    setAttr(el, 'data-state', state);
    setText(el.lastChild, state === 'live' ? 'live' : state === 'connecting' ? 'connecting' : 'reconnecting…');
    setAttr(el, 'title', state === 'live' ? 'Live updates connected' : 'Live updates interrupted; reconnecting');
  },
  onAuthLost() {
    api.get('/api/auth/me').catch(() => {});
  },
});

function onMessage(msg) {
  switch (msg.type) {
    case 'hello':
      performance.mark('llmr:hello');
      if (msg.user) setUser({ ...user, ...msg.user });
      nodes.setAll(msg.nodes || []);
      models.setTasks(msg.tasks || []);
      onStats(msg.stats);
      // After a reconnect, requests that ended while the connection was down are in the store.
      if (greeted) history.load();
      greeted = true;
      break;
    case 'node_joined':
    case 'node_changed':
      if (msg.node) {
        nodes.upsert(msg.node);
        nodeModal.nodeChanged(msg.node);
      }
      break;
    case 'node_left':
      nodes.remove(msg.id);
      nodeModal.nodeLeft(msg.id);
      break;
    case 'request':
      if (msg.request) {
        history.onRequest(msg.request);
        cards.requestFinished();
      }
      break;
    case 'task':
      if (msg.task) models.upsert(msg.task);
      break;
    case 'stats':
      onStats(msg.stats);
      break;
    default:
      break;
  }
}

function onStats(stats) {
  if (!stats) return;
  fmt.syncServerClock(stats.at_ms);
  cards.setStats(stats);
}

// --- views -----------------------------------------------------------------------

function setUser(u) {
  user = u;
  const admin = u && u.role === 'admin';
  document.body.classList.toggle('is-admin', !!admin);
  document.body.dataset.role = u ? u.role : '';
  setText($('#user-name'), u ? u.username : '');
  setText($('#user-role'), u ? u.role : '');
}

function showLogin(message) {
  live.stop();
  dataStarted = false;
  setUser(null);
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
  $('#boot').hidden = true;
  $('#app-view').hidden = true;
  $('#login-view').hidden = false;
  document.title = 'Sign in · llm-router';
  loginError(message);
  $(message ? '#login-password' : '#login-username').focus();
}

function loginError(message) {
  const el = $('#login-error');
  el.hidden = !message;
  el.textContent = message || '';
}

function showApp(u) {
  setUser(u);
  $('#boot').hidden = true;
  $('#login-view').hidden = true;
  $('#app-view').hidden = false;
  document.title = 'llm-router';
  if (!dataStarted) startData();
}

/** Opens the live connection and loads the REST-backed panels. */
function startData() {
  dataStarted = true;
  greeted = false;
  live.start();
  history.load();
  // Below the fold: after the first screen is drawn.
  const later = window.requestIdleCallback || ((fn) => setTimeout(fn, 200));
  later(() => {
    if (!dataStarted) return;
    models.loadCatalog();
    refreshRouterLog();
  }, { timeout: 1000 });
}

function refreshRouterLog() {
  return loadLog($('#router-log'), '/api/logs?tail=200', $('#router-log-level').value);
}

// --- login / logout --------------------------------------------------------------------

async function login(ev) {
  ev.preventDefault();
  const btn = $('#login-submit');
  const username = $('#login-username').value.trim();
  const password = $('#login-password').value;
  btn.disabled = true;
  loginError('');
  try {
    const res = await api.post('/api/auth/login', { username, password }, { quiet401: true });
    $('#login-password').value = '';
    showApp(res.user || { username, role: 'viewer' });
  } catch (e) {
    if (e.status === 401) loginError('Wrong username or password.');
    else if (e.status === 429) return throttled(e.retryAfter || 30);
    else loginError(e.message);
  } finally {
    if (!retryTimer) btn.disabled = false;
  }
}

/** 429: too many attempts; count down, then allow another try. */
function throttled(secs) {
  const btn = $('#login-submit');
  clearInterval(retryTimer);
  let left = secs;
  const tickDown = () => {
    if (left <= 0) {
      clearInterval(retryTimer);
      retryTimer = 0;
      btn.disabled = false;
      loginError('');
      return;
    }
    loginError(`Too many attempts, retry in ${left} s.`);
    btn.disabled = true;
    left--;
  };
  tickDown();
  retryTimer = setInterval(tickDown, 1000);
}

async function logout() {
  try {
    await api.post('/api/auth/logout', undefined, { quiet401: true });
  } catch {
    /* the session is gone anyway */
  }
  nodes.clear();
  showLogin('');
}

// --- boot ----------------------------------------------------------------------------

function mount() {
  setupDialogs();
  cards.mount();
  nodes.mount((id) => nodeModal.open(id));
  nodeModal.mount();
  models.mount();
  history.mount();
  nodes.onRender(() => {
    cards.setCounts(nodes.counts());
    models.nodesChanged();
    history.setNodeNames(nodes.all().map((n) => n.machine_name).sort());
  });
  $('#login-form').addEventListener('submit', login);
  $('#logout').addEventListener('click', logout);
  $('#router-log-refresh').addEventListener('click', refreshRouterLog);
  $('#router-log-level').addEventListener('change', refreshRouterLog);
  api.onUnauthorized(() => {
    if (user) showLogin('Your session has ended. Please sign in again.');
  });
}

async function boot() {
  performance.mark('llmr:boot');
  mount();
  // Regression rule: no modal is open after load.
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
  // Optimistic: most loads have a session, so the data starts coming while /api/auth/me runs
  // (saves a round trip); without a session these calls fail quietly and the login shows.
  const me = api.get('/api/auth/me', { quiet401: true });
  startData();
  try {
    const u = await me;
    performance.mark('llmr:me');
    showApp(u);
  } catch (e) {
    showLogin(e.status === 401 || e.status === 403 ? '' : e.message);
  }
}

boot().catch((e) => {
  toast(`Dashboard failed to start: ${e.message}`, 'error', 10000);
  throw e;
});
