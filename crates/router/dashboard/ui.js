// Shared UI pieces: toasts, dialogs, confirmation, status badges.

import { $, h } from './dom.js';

/** A short message in the corner; `kind` is `ok`, `error` or `info`. */
export function toast(message, kind = 'info', ms = 4000) {
  const el = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
  $('#toasts').append(el);
  setTimeout(() => {
    el.classList.add('leaving');
    setTimeout(() => el.remove(), 300);
  }, ms);
}

/** Wires the close buttons and backdrop clicks of every `<dialog>`; `onClose(dialog)` after closing. */
export function setupDialogs() {
  for (const dlg of document.querySelectorAll('dialog')) {
    dlg.addEventListener('click', (e) => {
      if (e.target === dlg || e.target.closest('[data-close]')) dlg.close();
    });
  }
}

export function openDialog(dlg) {
  if (!dlg.open) dlg.showModal();
}

/** Asks yes/no in a modal; resolves true on confirm. */
export function confirmAction(title, text, okLabel = 'Confirm') {
  const dlg = $('#confirm-modal');
  $('#confirm-title').textContent = title;
  $('#confirm-text').textContent = text;
  $('#confirm-ok').textContent = okLabel;
  dlg.returnValue = '';
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
    dlg.showModal();
  });
}

export const STATUS_LABEL = {
  online: 'online',
  initializing: 'initializing',
  suspect: 'suspect',
  offline: 'offline',
};

/** `<span class="status status-online"><i></i>online</span>`. */
export function statusBadge(status, extra) {
  return h('span', { class: `status status-${status}` }, h('i'), STATUS_LABEL[status] || status, extra);
}

/** Task and model states → colour class. */
export function stateClass(state) {
  switch (state) {
    case 'ready':
      return 'ok';
    case 'failed':
      return 'err';
    case 'downloading':
    case 'verifying':
    case 'loading':
      return 'info';
    default:
      return 'muted';
  }
}

/** HTTP status → colour class. */
export function httpClass(status, error) {
  if (status >= 500 || (error && status < 400)) return 'err';
  if (status >= 400) return 'warn';
  return 'ok';
}
