// The dashboard WebSocket: one connection, reconnected with backoff (0.5 s doubling to 5 s) while
// the user is logged in. `onMessage(msg)` gets every parsed frame; `onState(state)` gets
// `connecting`, `live` or `reconnecting`.

const MIN_DELAY = 500;
const MAX_DELAY = 5000;

export class Live {
  constructor({ onMessage, onState, onAuthLost }) {
    this.onMessage = onMessage;
    this.onState = onState;
    this.onAuthLost = onAuthLost;
    this.ws = null;
    this.delay = MIN_DELAY;
    this.timer = 0;
    this.running = false;
    this.failures = 0;
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.delay = MIN_DELAY;
    this.failures = 0;
    this.connect();
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close();
      this.ws = null;
    }
  }

  /** Drops the connection and opens a new one at once (after `resync`: the new hello has it all). */
  restart() {
    if (!this.running) return;
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close();
      this.ws = null;
    }
    this.connect();
  }

  connect() {
    clearTimeout(this.timer);
    const url = (location.protocol === 'https:' ? 'wss' : 'ws') + '://' + location.host + '/ws/dashboard';
    this.onState(this.failures ? 'reconnecting' : 'connecting');
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      this.retry();
      return;
    }
    this.ws = ws;
    let greeted = false;
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (msg.type === 'hello') {
        greeted = true;
        this.delay = MIN_DELAY;
        this.failures = 0;
        this.onState('live');
      }
      if (msg.type === 'resync') {
        this.restart();
        return;
      }
      this.onMessage(msg);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      // 1008: the router closed the socket because the session ended (logout, expiry).
      if (ev.code === 1008 && this.onAuthLost) this.onAuthLost();
      if (!greeted) this.failures++;
      this.retry();
    };
  }

  retry() {
    if (!this.running) return;
    this.onState('reconnecting');
    // Failing before the hello several times in a row may mean the session is gone.
    if (this.failures > 0 && this.failures % 3 === 0 && this.onAuthLost) this.onAuthLost();
    this.timer = setTimeout(() => this.connect(), this.delay);
    this.delay = Math.min(MAX_DELAY, this.delay * 2);
  }
}
