// Pitchey Comms browser client: a dependency-free ES module.
//
//   import { PitcheyClient } from "/static/pitchey-comms.js";
//   const client = new PitcheyClient({ url: "https://comms.example", token });
//   client.addEventListener("message", (e) => show(e.detail));
//   await client.subscribe(conversationId);
//   await client.send(conversationId, "Loved the pitch!");
//
// Types: /static/pitchey-comms.d.ts. Guide: docs/browser-client.md.
//
// What it takes care of (docs/protocol.md):
// - opens /ws with a one-use ticket from POST /api/realtime/ticket, so the token never
//   appears in a URL (falls back to ?token= if no ticket can be had);
// - reconnects with exponential backoff and jitter, and asks for a fresh token if a
//   `getToken` callback is given; waits at least the server's `retryAfter` hint (an
//   `unavailable` or `storage_full` error frame) before reconnecting, resubscribing or resending;
// - remembers the last seq per conversation and resubscribes with `since`, so nothing is
//   missed; pages the gap over REST when the server answers `recovered: false`; resubscribes
//   when it sees a seq jump; drops repeats; `skipped` frames (stand-ins for what users you
//   block wrote) advance the seq without an event;
// - sends with a clientMsgId and resolves when the `ack` arrives; unacknowledged sends are
//   sent again after a reconnect with the same clientMsgId, which the server deduplicates;
// - subscribe() resolves with the `subscribed` frame and rejects on a refusal (an `error`
//   frame whose ref is the conversation id: not_found, too_many_subscriptions, ...), except
//   the outage codes `unavailable` and `storage_full`, which it retries after `retryAfter`;
// - typing (refreshed while typing), read receipts, presence (coalesced frames applied to
//   the online list of `subscribed`), notifications and inbox counts;
// - an application-level ping so idle connections stay open and dead ones are noticed.

const PING_EVERY_MS = 25000;
const TYPING_REFRESH_MS = 3000;

export class PitcheyClient extends EventTarget {
  constructor({ url = location.origin, token = null, getToken = null, backoff = {} } = {}) {
    super();
    this.baseUrl = url.replace(/\/$/, "");
    this.token = token;
    this.getToken = getToken;
    this.backoff = { initial: 500, max: 15000, ...backoff };
    this.conversations = new Map(); // conversationId -> { lastSeq, subscribed }
    this.pending = new Map(); // clientMsgId -> { frame, resolve, reject }
    this.subscribing = new Map(); // conversationId -> [{ resolve, reject }] until answered
    this.typingTimers = new Map();
    this.attempt = 0;
    this.retryUntil = 0; // Date.now() before which the server asked us not to come back
    this.retryTimers = new Map(); // ref -> timer of a resubscribe or resend the server deferred
    this.socket = null;
    this.closedByUser = false;
    this.state = "idle";
    this._connect();
  }

  // ---- public API ---------------------------------------------------------

  // Resolves with the `subscribed` frame; rejects with an Error carrying `code` and `ref` when
  // the server refuses (see the header comment), or when unsubscribe() or close() comes first.
  subscribe(conversationId, since = undefined) {
    if (typeof conversationId !== "string" || conversationId === "") {
      // The server could not name the conversation in its error (no ref): refuse here.
      return Promise.reject(clientError("invalid_frame", "conversationId must be a non-empty string", null));
    }
    if (this.closedByUser) return Promise.reject(clientError("closed", "the client is closed", conversationId));
    const known = this.conversations.get(conversationId);
    const lastSeq = since ?? known?.lastSeq;
    this.conversations.set(conversationId, { lastSeq: lastSeq ?? null, subscribed: false });
    const promise = new Promise((resolve, reject) => {
      const waiters = this.subscribing.get(conversationId) ?? [];
      waiters.push({ resolve, reject });
      this.subscribing.set(conversationId, waiters);
    });
    this._subscribe(conversationId);
    return promise;
  }

  unsubscribe(conversationId) {
    this.conversations.delete(conversationId);
    this._settleSubscribe(conversationId, null, clientError("unsubscribed", "unsubscribed before the server answered", conversationId));
    this._send({ type: "unsubscribe", conversationId });
  }

  send(conversationId, content, { clientMsgId = randomId(), attachmentIds } = {}) {
    const frame = { type: "send", conversationId, content, clientMsgId };
    if (attachmentIds) frame.attachmentIds = attachmentIds;
    return new Promise((resolve, reject) => {
      this.pending.set(clientMsgId, { frame, resolve, reject });
      this._send(frame);
    });
  }

  typing(conversationId, isTyping = true) {
    clearInterval(this.typingTimers.get(conversationId));
    this.typingTimers.delete(conversationId);
    this._send({ type: "typing", conversationId, isTyping });
    if (isTyping) {
      // The server expires a typing state by itself; refresh it while the user types.
      const timer = setInterval(
        () => this._send({ type: "typing", conversationId, isTyping: true }),
        TYPING_REFRESH_MS,
      );
      this.typingTimers.set(conversationId, timer);
    }
  }

  read(conversationId, messageId) {
    this._send({ type: "read", conversationId, messageId });
  }

  async history(conversationId, { before, after, limit = 50 } = {}) {
    const params = new URLSearchParams({ limit: String(limit) });
    if (before !== undefined) params.set("before", String(before));
    if (after !== undefined) params.set("after", String(after));
    return this._rest(`/api/messages/${encodeURIComponent(conversationId)}?${params}`);
  }

  // Everyone online in a conversation now (the list large rooms leave out of `presence`).
  async presence(conversationId) {
    return this._rest(`/api/messages/conversations/${encodeURIComponent(conversationId)}/presence`);
  }

  async notifications({ unread = false, cursor } = {}) {
    const params = new URLSearchParams();
    if (unread) params.set("unread", "true");
    if (cursor) params.set("cursor", cursor);
    return this._rest(`/api/notifications?${params}`);
  }

  async markNotificationRead(id) {
    return this._rest(`/api/notifications/${encodeURIComponent(id)}/read`, { method: "POST" });
  }

  // Web Push: registers the service worker at `serviceWorkerUrl` (the service serves one at
  // /api/push/sw.js; it must be on the page's origin), asks the user's permission, subscribes
  // with the service's VAPID key and stores the subscription. Resolves with {id}; rejects with
  // code "not_supported" (no Push API), "permission_denied", or the server's error.
  async registerPush(serviceWorkerUrl) {
    if (!("serviceWorker" in navigator) || !("PushManager" in globalThis)) {
      throw clientError("not_supported", "this browser has no Push API");
    }
    const { publicKey } = await this._rest("/api/push/public-key");
    const permission = await Notification.requestPermission();
    if (permission !== "granted") throw clientError("permission_denied", `notifications ${permission}`);
    const registration = await navigator.serviceWorker.register(serviceWorkerUrl);
    await navigator.serviceWorker.ready;
    const key = base64UrlBytes(publicKey);
    let subscription = await registration.pushManager.getSubscription();
    const current = subscription?.options?.applicationServerKey;
    if (subscription && current && !sameBytes(new Uint8Array(current), key)) {
      // Made with another key (the server's keys changed): push services would refuse ours.
      await subscription.unsubscribe();
      subscription = null;
    }
    subscription ??= await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
    const { endpoint, keys } = subscription.toJSON();
    return this._rest("/api/push/subscriptions", {
      method: "POST",
      body: JSON.stringify({ endpoint, keys: { p256dh: keys.p256dh, auth: keys.auth }, userAgent: navigator.userAgent }),
    });
  }

  close() {
    this.closedByUser = true;
    for (const timer of this.typingTimers.values()) clearInterval(timer);
    clearInterval(this.pingTimer);
    clearTimeout(this.retryTimer);
    for (const timer of this.retryTimers.values()) clearTimeout(timer);
    this.socket?.close(1000);
    // Nothing will answer these any more: settle them rather than leave them pending forever.
    for (const id of [...this.subscribing.keys()]) {
      this._settleSubscribe(id, null, clientError("closed", "the client was closed", id));
    }
    for (const [clientMsgId, { reject }] of this.pending) {
      // The send may or may not be stored; resending with the same clientMsgId is safe.
      reject(clientError("closed", "the client was closed before the send was acknowledged", clientMsgId));
    }
    this.pending.clear();
    this._setState("closed");
  }

  // ---- connection -----------------------------------------------------------

  async _connect() {
    if (this.closedByUser) return;
    this._setState("connecting");
    if (this.getToken) {
      try {
        this.token = await this.getToken();
      } catch (error) {
        this._scheduleReconnect();
        return;
      }
    }
    // A one-use ticket keeps the long-lived token out of the URL (and out of proxy logs).
    let query = "token=" + encodeURIComponent(this.token);
    if (/^https?:/.test(this.baseUrl)) {
      try {
        const { ticket } = await this._rest("/api/realtime/ticket", { method: "POST" });
        query = "ticket=" + encodeURIComponent(ticket);
      } catch (error) {
        // An expired token: back off and ask getToken again. Anything else (an older server,
        // the ticket store down): the token in the URL still works.
        if (error.code === "unauthorized") {
          this._scheduleReconnect();
          return;
        }
      }
      if (this.closedByUser) return;
    }
    const wsUrl = this.baseUrl.replace(/^http/, "ws") + "/ws?" + query;
    const socket = new WebSocket(wsUrl);
    this.socket = socket;
    socket.onopen = () => {
      this.attempt = 0;
      this._setState("open");
      for (const id of this.conversations.keys()) this._subscribe(id);
      // Anything not acknowledged may not be stored: send it again, same clientMsgId.
      for (const { frame } of this.pending.values()) this._send(frame);
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this._send({ type: "ping" }), PING_EVERY_MS);
    };
    socket.onmessage = (event) => this._frame(JSON.parse(event.data));
    socket.onclose = (event) => {
      clearInterval(this.pingTimer);
      if (this.socket !== socket) return;
      this.socket = null;
      for (const state of this.conversations.values()) state.subscribed = false;
      this._emit("disconnected", { code: event.code, reason: event.reason });
      // An erased account's sessions are closed for good: reconnecting would only come back.
      if (event.code === 1008 && event.reason === "account erased") this.closedByUser = true;
      if (!this.closedByUser) this._scheduleReconnect();
    };
  }

  _scheduleReconnect() {
    this._setState("reconnecting");
    const ceiling = Math.min(this.backoff.max, this.backoff.initial * 2 ** this.attempt);
    this.attempt += 1;
    // Full jitter: a server restart must not bring every client back in the same instant.
    // A server in an outage said how long to stay away (already jittered): never sooner.
    const delay = Math.max(Math.random() * ceiling, this.retryUntil - Date.now());
    this.retryTimer = setTimeout(() => this._connect(), delay);
  }

  _subscribe(conversationId) {
    const state = this.conversations.get(conversationId);
    const frame = { type: "subscribe", conversationId };
    if (state && state.lastSeq !== null && state.lastSeq !== undefined) frame.since = state.lastSeq;
    this._send(frame);
  }

  _send(frame) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  // ---- incoming frames ----------------------------------------------------------

  async _frame(frame) {
    switch (frame.type) {
      case "subscribed": {
        const state = this.conversations.get(frame.conversationId);
        if (state) {
          state.subscribed = true;
          state.online = new Set(frame.online);
          if (state.lastSeq === null || state.lastSeq === undefined) state.lastSeq = frame.seq;
          else if (!frame.recovered) {
            try {
              await this._pageGap(frame.conversationId, frame.seq);
            } catch (error) {
              // The subscription itself stands; the next seq jump pages the gap again.
              this._emit("error", {
                type: "error",
                code: error.code || "network_error",
                message: `paging the missed messages failed: ${error.message}`,
                ref: frame.conversationId,
              });
            }
          }
        }
        this._emit("subscribed", frame);
        this._settleSubscribe(frame.conversationId, frame, null);
        break;
      }
      case "message": {
        const message = frame.message;
        const state = this.conversations.get(message.conversationId);
        if (state && state.lastSeq !== null) {
          if (message.seq <= state.lastSeq) return; // a repeat
          if (message.seq > state.lastSeq + 1) {
            // A gap: resubscribe with since; the server replays what is missing in order.
            this._subscribe(message.conversationId);
            return;
          }
          state.lastSeq = message.seq;
        }
        this._emit("message", message);
        break;
      }
      case "ack": {
        const waiting = this.pending.get(frame.clientMsgId);
        if (waiting) {
          this.pending.delete(frame.clientMsgId);
          waiting.resolve(frame);
        }
        this._emit("ack", frame);
        break;
      }
      case "error": {
        const retryable = frame.code === "unavailable" || frame.code === "storage_full";
        const waiting = frame.ref ? this.pending.get(frame.ref) : undefined;
        if (waiting && !retryable) {
          this.pending.delete(frame.ref);
          waiting.reject(clientError(frame.code, frame.message, frame.ref));
        }
        const refused = frame.ref && !waiting && !retryable ? this.conversations.get(frame.ref) : undefined;
        if (refused && !refused.subscribed) {
          // A subscribe the server refused (not an outage): forget the conversation, so
          // reconnects do not ask again, and reject whoever awaits subscribe().
          this.conversations.delete(frame.ref);
          this._settleSubscribe(frame.ref, null, clientError(frame.code, frame.message, frame.ref));
        }
        if (retryable && typeof frame.retryAfter === "number") this._retryLater(frame);
        this._emit("error", frame);
        break;
      }
      case "presence": {
        // Coalesced: who joined and left since the last frame, or only the count in a
        // large room. Applied as set operations to the list `subscribed` gave.
        const state = this.conversations.get(frame.conversationId);
        if (state?.online) {
          for (const user of frame.joined || []) state.online.add(user);
          for (const user of frame.left || []) state.online.delete(user);
        }
        this._emit("presence", {
          ...frame,
          online: state?.online && (frame.joined || frame.left) ? [...state.online] : undefined,
        });
        break;
      }
      case "message_updated":
      case "message_deleted":
      case "member":
      case "skipped": {
        // Changes take seqs like messages: the same repeat and gap rules keep lastSeq right.
        // `skipped` (something by a user you block) only moves lastSeq, and is not emitted.
        const state = this.conversations.get(frame.conversationId);
        if (state && state.lastSeq !== null) {
          if (frame.seq <= state.lastSeq) return;
          if (frame.seq > state.lastSeq + 1) {
            this._subscribe(frame.conversationId);
            return;
          }
          state.lastSeq = frame.seq;
        }
        if (frame.type !== "skipped") this._emit(frame.type, frame);
        break;
      }
      case "unsubscribed":
        // Removed (or left): no resubscribing to it after a reconnect.
        if (frame.reason) this.conversations.delete(frame.conversationId);
        this._emit(frame.type, frame);
        break;
      case "pong":
        break;
      default:
        // read, typing, notification, inbox
        this._emit(frame.type, frame);
    }
  }

  _retryLater(frame) {
    // The server is in an outage and said when to come back: a refused subscribe or send is
    // tried again then on this socket; if the socket closes meanwhile, the reconnect waits too.
    const delay = frame.retryAfter * 1000;
    this.retryUntil = Math.max(this.retryUntil, Date.now() + delay);
    const ref = frame.ref;
    if (!ref || this.retryTimers.has(ref)) return;
    const timer = setTimeout(() => {
      this.retryTimers.delete(ref);
      const pending = this.pending.get(ref);
      if (pending) this._send(pending.frame);
      else if (this.conversations.get(ref)?.subscribed === false) this._subscribe(ref);
    }, delay);
    this.retryTimers.set(ref, timer);
  }

  _settleSubscribe(conversationId, frame, error) {
    const waiters = this.subscribing.get(conversationId);
    if (!waiters) return;
    this.subscribing.delete(conversationId);
    for (const { resolve, reject } of waiters) {
      if (error) reject(error);
      else resolve(frame);
    }
  }

  async _pageGap(conversationId, upTo) {
    // History holds messages only: changes (edits, deletions, members) and messages of users
    // you block take seqs it does not list, so its seqs have holes that are not losses.
    const state = this.conversations.get(conversationId);
    let after = state ? state.lastSeq : upTo;
    while (after < upTo) {
      const page = await this.history(conversationId, { after, limit: 100 });
      for (const message of page.items) {
        if (message.seq > upTo) break; // live frames bring the rest
        if (message.seq > state.lastSeq) {
          state.lastSeq = message.seq;
          this._emit("message", message);
        }
      }
      if (!page.nextCursor) break;
      after = Number(page.nextCursor);
    }
    // Everything up to `subscribed.seq` was paged; live frames continue after it.
    if (state && state.lastSeq < upTo) state.lastSeq = upTo;
  }

  async _rest(path, init = {}) {
    const response = await fetch(this.baseUrl + path, {
      ...init,
      headers: { Authorization: `Bearer ${this.token}`, "Content-Type": "application/json", ...(init.headers || {}) },
    });
    const body = await response.json();
    if (!response.ok) throw Object.assign(new Error(body.error?.message || response.statusText), body.error || {});
    return body;
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _setState(state) {
    this.state = state;
    this._emit("state", { state });
  }
}

// What every rejection carries: `code` (a protocol error code, or "closed"/"unsubscribed"), the
// server's `message`, and `ref` (the conversation id or clientMsgId it answers).
function clientError(code, message, ref) {
  return Object.assign(new Error(message), { code, ref });
}

function base64UrlBytes(text) {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function sameBytes(a, b) {
  return a.length === b.length && a.every((value, index) => value === b[index]);
}

function randomId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  return Date.now().toString(36) + Math.random().toString(36).slice(2);
}
