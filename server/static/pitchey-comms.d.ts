// TypeScript declarations for /static/pitchey-comms.js (the Pitchey Comms browser client).
//
//   import { PitcheyClient } from "https://comms.example/static/pitchey-comms.js";
//
// Shapes follow docs/protocol.md (frames) and the README (REST answers). Guide:
// docs/browser-client.md. Field names are camelCase as on the wire.

/** Where the connection is: `idle` before the first attempt, `closed` after close(). */
export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

/** Reconnect delays: full jitter up to min(max, initial * 2^attempt) milliseconds. */
export interface BackoffOptions {
  /** First ceiling in ms (default 500). */
  initial?: number;
  /** Largest ceiling in ms (default 15000). */
  max?: number;
}

export interface PitcheyClientOptions {
  /** The service's origin, e.g. "https://comms.example" (default: the page's own origin). */
  url?: string;
  /** A bearer token (JWT). Ignored once `getToken` is given. */
  token?: string | null;
  /** Called before every connection attempt for a fresh token; a throw backs off and retries. */
  getToken?: (() => string | Promise<string>) | null;
  backoff?: BackoffOptions;
}

export interface Attachment {
  id: string;
  filename: string;
  contentType: string;
  size: number;
}

/** A stored message: the same shape over WebSocket and REST. */
export interface Message {
  id: string;
  conversationId: string;
  seq: number;
  senderId: string;
  content: string;
  /** ISO 8601, UTC. */
  createdAt: string;
  clientMsgId: string | null;
  attachments: Attachment[] | null;
  /** Only on an edited message: when it was last edited (ISO 8601, UTC). */
  editedAt?: string;
  /** Only on a deleted message (its content is then empty). */
  deleted?: boolean;
}

export interface Notification {
  id: string;
  userId: string;
  type: string;
  title: string;
  message: string;
  data: Record<string, unknown> | null;
  priority: string;
  createdAt: string;
  readAt: string | null;
  /** What happened to the email channel, e.g. "none", "queued", "sent". */
  emailStatus: string;
}

// ---- frames (the `detail` of the events below) -------------------------------------------

export interface SubscribedFrame {
  type: "subscribed";
  conversationId: string;
  /** The latest seq when the subscription started. */
  seq: number;
  /** User ids online in the conversation then. */
  online: string[];
  /** false: the gap was too large to replay; the client paged it over REST before this event. */
  recovered: boolean;
  /** How many messages were replayed over the socket. */
  replayed: number;
}

export interface UnsubscribedFrame {
  type: "unsubscribed";
  conversationId: string;
  /** Set when the server ended the subscription: `removed` from the conversation, or `left`. */
  reason?: "removed" | "left";
}

/** A message was edited; `seq` is the edit's own place in the conversation. */
export interface MessageUpdatedFrame {
  type: "message_updated";
  conversationId: string;
  seq: number;
  /** The message as it is now (its own seq unchanged). */
  message: Message;
}

/** A message was deleted; its content is gone. */
export interface MessageDeletedFrame {
  type: "message_deleted";
  conversationId: string;
  seq: number;
  messageId: string;
  /** Who wrote the deleted message. */
  senderId?: string;
}

/**
 * Stands in for a message, edit or deletion by a user you block: only its seq, so your seqs
 * stay gap-free. The client advances on it without dispatching an event.
 */
export interface SkippedFrame {
  type: "skipped";
  conversationId: string;
  seq: number;
}

/** Someone was added to, removed from, or left the conversation. */
export interface MemberFrame {
  type: "member";
  conversationId: string;
  seq: number;
  userId: string;
  action: "added" | "removed" | "left";
  by: string;
}

export interface AckFrame {
  type: "ack";
  messageId: string;
  seq: number;
  conversationId: string;
  clientMsgId: string | null;
}

/** A protocol error code (docs/protocol.md "Error codes"), or one the client makes itself. */
export type ErrorCode =
  | "invalid_json"
  | "invalid_frame"
  | "unsupported_frame"
  | "validation_error"
  | "not_found"
  | "conflict"
  | "rate_limited"
  | "too_many_subscriptions"
  | "unavailable"
  | "storage_full"
  | "internal_error"
  | (string & {});

export interface ErrorFrame {
  type: "error";
  code: ErrorCode;
  message: string;
  /** The clientMsgId of a failed send, else the conversation id, else null. */
  ref: string | null;
  /** Seconds to wait before trying again; only on `unavailable` and `storage_full`. */
  retryAfter?: number;
}

export interface ReadFrame {
  type: "read";
  conversationId: string;
  userId: string;
  messageId: string;
  seq: number;
}

export interface TypingFrame {
  type: "typing";
  conversationId: string;
  userId: string;
  isTyping: boolean;
}

/**
 * Coalesced presence: who came online (`joined`) and went offline (`left`) since the last
 * frame, each left out when empty; above PRESENCE_BROADCAST_MAX_MEMBERS online only the count.
 */
export interface PresenceEventDetail {
  type: "presence";
  conversationId: string;
  onlineCount: number;
  joined?: string[];
  left?: string[];
  /**
   * Computed by the client: the `subscribed` list with every `joined` and `left` so far
   * applied. Present only when this frame carries `joined` or `left` (absent in large rooms:
   * ask presence() for the list).
   */
  online?: string[];
}

export interface NotificationFrame {
  type: "notification";
  notification: Notification;
  /** The server's unread count after this notification: show it as is. */
  unreadCount: number;
}

export interface InboxFrame {
  type: "inbox";
  unreadCount: number;
}

export interface StateEventDetail {
  state: ConnectionState;
}

export interface DisconnectedEventDetail {
  /** The WebSocket close code (1000, 1001, 1006, 1011, 1013, ...). */
  code: number;
  reason: string;
}

/** Every event the client dispatches, and its `detail`. */
export interface PitcheyClientEventMap {
  /** Each message once, in seq order per conversation (live, replayed or paged over REST). */
  message: CustomEvent<Message>;
  ack: CustomEvent<AckFrame>;
  /** Every error frame, also those that reject a send() or subscribe(). */
  error: CustomEvent<ErrorFrame>;
  subscribed: CustomEvent<SubscribedFrame>;
  unsubscribed: CustomEvent<UnsubscribedFrame>;
  /** Changes take seqs like messages: each once, in order, with the same recovery. */
  message_updated: CustomEvent<MessageUpdatedFrame>;
  message_deleted: CustomEvent<MessageDeletedFrame>;
  member: CustomEvent<MemberFrame>;
  presence: CustomEvent<PresenceEventDetail>;
  typing: CustomEvent<TypingFrame>;
  read: CustomEvent<ReadFrame>;
  notification: CustomEvent<NotificationFrame>;
  inbox: CustomEvent<InboxFrame>;
  state: CustomEvent<StateEventDetail>;
  disconnected: CustomEvent<DisconnectedEventDetail>;
}

// ---- REST answers ------------------------------------------------------------------------

export interface MessagePage {
  items: Message[];
  /** Goes in `before` (newest-first paging) or `after` (forward paging). */
  nextCursor: string | null;
}

export interface PresenceList {
  conversationId: string;
  online: string[];
  onlineCount: number;
}

export interface NotificationPage {
  items: Notification[];
  nextCursor: string | null;
  unreadCount: number;
}

export interface InboxCount {
  unreadCount: number;
}

/** POST /api/push/subscriptions: the subscription's id (the same for the same endpoint). */
export interface PushSubscriptionCreated {
  id: string;
}

export interface HistoryOptions {
  /** Messages with a smaller seq (the newest page when neither is given). */
  before?: number | string;
  /** Messages with a larger seq, oldest first. */
  after?: number | string;
  /** At most 100 (default 50). */
  limit?: number;
}

export interface NotificationsOptions {
  unread?: boolean;
  cursor?: string;
}

export interface SendOptions {
  /** Idempotency key; a random one by default. Resends with it return the first message. */
  clientMsgId?: string;
  /** Your uploads for this conversation (POST /api/messages/attachments), at most 10. */
  attachmentIds?: string[];
}

/**
 * What every rejection of send(), subscribe() and the REST methods is: an Error with the
 * server's `code` (REST: the `{"error": {"code"}}` of the answer), or `closed` / `unsubscribed`
 * when the client itself gave up.
 */
export interface PitcheyError extends Error {
  code: ErrorCode | "closed" | "unsubscribed";
  /** WebSocket: the conversation id or clientMsgId the error answers. */
  ref?: string | null;
}

export declare class PitcheyClient extends EventTarget {
  /** Connects at once (a ticket from POST /api/realtime/ticket, then /ws?ticket=). */
  constructor(options?: PitcheyClientOptions);

  /** The connection state; each change also dispatches `state`. */
  readonly state: ConnectionState;
  /** The token in use (refreshed from getToken on each connection attempt). */
  token: string | null;

  /**
   * Join a conversation's live stream, replaying after `since` (default: the last seq this
   * client saw). Resolves with the `subscribed` frame, after any REST paging of a gap.
   * Rejects with a PitcheyError when an `error` frame with `ref === conversationId` answers
   * it (not_found, too_many_subscriptions, validation_error, internal_error, ...) and the
   * client forgets the conversation; `unavailable` and `storage_full` do not reject: the
   * client subscribes again after `retryAfter` and the promise settles with that answer.
   * Also rejects with `unsubscribed` or `closed` when those come first.
   */
  subscribe(conversationId: string, since?: number): Promise<SubscribedFrame>;
  unsubscribe(conversationId: string): void;
  /**
   * Resolves with the `ack` once the message is stored; resent after a reconnect (same
   * clientMsgId) until then. Rejects on an error frame for it other than `unavailable` and
   * `storage_full` (retried after `retryAfter`), or with `closed` after close().
   */
  send(conversationId: string, content: string, options?: SendOptions): Promise<AckFrame>;
  /** true: refreshed every 3 s until typing(conversationId, false). */
  typing(conversationId: string, isTyping?: boolean): void;
  /** Move your read position to this message (and everything before it). */
  read(conversationId: string, messageId: string): void;

  /** GET /api/messages/{conversationId}. */
  history(conversationId: string, options?: HistoryOptions): Promise<MessagePage>;
  /** GET /api/messages/conversations/{conversationId}/presence: everyone online now. */
  presence(conversationId: string): Promise<PresenceList>;
  /** GET /api/notifications. */
  notifications(options?: NotificationsOptions): Promise<NotificationPage>;
  /** POST /api/notifications/{id}/read; every open session then gets `inbox`. */
  markNotificationRead(id: string): Promise<InboxCount>;
  /**
   * Web Push: register the service worker at `serviceWorkerUrl` (served by the service at
   * /api/push/sw.js; it must be on the page's origin), ask for permission, subscribe with
   * the service's VAPID key and store the subscription (POST /api/push/subscriptions).
   * Rejects with code `not_supported`, `permission_denied`, or the server's error
   * (`not_found` when the server has no VAPID keys).
   */
  registerPush(serviceWorkerUrl: string | URL): Promise<PushSubscriptionCreated>;

  /** Close for good: no reconnect; pending subscribe() and send() reject with `closed`. */
  close(): void;

  addEventListener<K extends keyof PitcheyClientEventMap>(
    type: K,
    listener: (this: PitcheyClient, event: PitcheyClientEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof PitcheyClientEventMap>(
    type: K,
    listener: (this: PitcheyClient, event: PitcheyClientEventMap[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
}
