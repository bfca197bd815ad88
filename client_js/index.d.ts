// Type declarations for client.js, the Bulletin live client (wire protocol v1).
// Usage: docs/client.md. Protocol: docs/protocol.md.

/** "websocket": one socket for every stream; "sse": one EventSource per stream. */
export type Transport = "websocket" | "sse";

/**
 * - "connecting": the first connection is being made
 * - "live": connected (WebSocket open, or every stream's EventSource open)
 * - "reconnecting": disconnected; a reconnect is scheduled (`detail.delay`) or in progress
 * - "offline": the browser says it is offline; nothing is tried until it is online again
 * - "closed": `close()` was called, or the server said not to retry (`detail.code`)
 */
export type Status = "connecting" | "live" | "reconnecting" | "offline" | "closed";

export interface StatusDetail {
  /** The transport in use, or null before the first connection. */
  transport: Transport | null;
  /** Reconnects in a row before this one (0 for the first); the back-off exponent. */
  attempt: number;
  /** For "reconnecting": milliseconds until the next try (0 = now); otherwise null. */
  delay: number | null;
  /** The WebSocket close code that caused this status, when there was one. */
  code: number | null;
  /** The close reason, or a short explanation ("heartbeat timeout"). */
  reason: string | null;
}

/** What to do after a WebSocket close code (server/core/closecodes.py). */
export type ClosePolicy = "now" | "backoff" | "no";

/** Someone a post is by (a byline). */
export interface Person {
  id: number;
  name: string;
  /** Shown under the name: "Reporter in Caracas". */
  description: string;
  photo: { url: string; width: number; height: number; variants: unknown[] } | null;
}

/** A post as the API and events show it (docs/api.md). */
export interface Post {
  id: number;
  stream: string;
  /** The account that published it. */
  author: { id: number; name: string } | null;
  /** Its own headline, or null (pages then use its first line). */
  headline: string | null;
  /** The bylines, in order: people of the directory (/api/people). */
  contributors: Person[];
  /** Short slugs: "economy", "polls". */
  tags: string[];
  body: string | null;
  html: string | null;
  embeds: unknown[];
  pinned: boolean;
  /** Raised by each edit of the text or photos (not by a pin). The post's ETag is
   *  `"r<revision>"`: send it as If-Match on PATCH or DELETE /api/posts/{id} to refuse a
   *  change made from an older revision (412, docs/api.md). */
  revision: number;
  created_at: string;
  edited_at: string | null;
  deleted_at: string | null;
  deleted: boolean;
  [key: string]: unknown;
}

/** An `event` frame, exactly as the server sent it (docs/events.md). */
export interface BulletinEvent {
  type: "event";
  stream: string;
  seq: number;
  /** "post.created" | "post.edited" | "post.deleted" | "post.pinned" | "post.unpinned" |
   * "post.embedded" | "stream.updated" | "stream.ended", or a newer op: ignore ops you do
   * not know. */
  op: string;
  at: string;
  /**
   * For post.* ops: the post's full current state. In a replay (the events after your
   * `since`) that is the post as it is now, whatever the op: a `post.created` may carry
   * a post with `deleted: true`, or text edited after it. Apply every post event alike:
   * remove the post when `post.deleted`, otherwise add it or replace the one you have.
   */
  post?: Post;
  /**
   * Only on a filtered subscription (`filter`), for a post event whose post the filter
   * does not show (now): `post` is then only `{id}`. Remove that post if you show it.
   */
  filtered?: true;
  /** For stream.* ops: the stream's current state. */
  stream_info?: Record<string, unknown>;
  [key: string]: unknown;
}

/** The state reloaded over HTTP after a `reset`. */
export interface Snapshot {
  /** GET /api/streams/{slug}: the stream with its current `seq` and `pinned` posts. */
  stream: { slug: string; seq: number; pinned?: Post[]; [key: string]: unknown };
  /** The newest page of GET /api/streams/{slug}/posts, newest first. */
  posts: Post[];
  /** The pinned posts (`stream.pinned`), newest first; [] if the API gave none. */
  pinned: Post[];
}

/** Which posts a subscription receives in full: one tag's, the key events, or both. */
export interface PostFilter {
  tag?: string | null;
  pinned?: boolean;
}

/** One editor on a stream, as `presence` frames list them (editors' connections only). */
export interface PresenceEntry {
  /** The editor's id. */
  editor: number;
  /** Their display name. */
  name: string;
  /** The post they are editing or looking at; null for the stream itself. */
  post: number | null;
  state: "editing" | "viewing";
  /** When they started doing this (ISO 8601). */
  since: string;
}

export interface SubscribeOptions {
  /** The last seq the page already shows; null/undefined = only new events. */
  since?: number | null;
  /**
   * Only these posts in full. Every event still arrives, in seq order; the others come
   * as `filtered` stubs. A reset's snapshot lists only these posts.
   */
  filter?: PostFilter;
  /** Each event exactly once, in seq order. */
  onEvent?: (event: BulletinEvent) => void;
  /** After a `reset`: replace the page's state with this; following resumes from its seq. */
  onReset?: (snapshot: Snapshot) => void;
  /** After each (re)subscribe succeeds, with the stream's newest seq. */
  onSubscribed?: (seq: number) => void;
  /** Error frames for this stream, not-found/forbidden, failed reloads, handler exceptions. */
  onError?: (error: BulletinError) => void;
  /** Editors only (WebSocket): everyone on the stream, whenever that changes. */
  onPresence?: (editors: PresenceEntry[]) => void;
  /** Editors only (WebSocket): open readers of the stream over every server process. */
  onReaders?: (count: number) => void;
  /** Editors only (WebSocket): the stream's posts that wait (for approval, or their
   * time) changed; read the lists again (`GET /api/streams/{slug}/posts?status=…`). */
  onQueue?: () => void;
}

export interface BackoffOptions {
  /** Window of the first retry, ms (default 500). */
  initial?: number;
  /** Largest window, ms (default 30000). */
  max?: number;
  /** Smallest window after a going-away/restart close (1001, 1012), ms (default 2000). */
  goingAway?: number;
}

/** A WebSocket constructor: the standard one, or React Native's (which takes headers). */
export type WebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
  options?: { headers?: Record<string, string> },
) => WebSocket;

/** An EventSource constructor; polyfills may honour `headers` in the init. */
export type EventSourceConstructor = new (
  url: string,
  init?: { withCredentials?: boolean; headers?: Record<string, string> },
) => EventSource;

export interface ClientOptions {
  /** Server base URL (http/https, optionally with a path prefix). Default: location.origin. */
  url?: string;
  /** An editor's API token: sent on fetch requests, to EventSource polyfills, and to
   * React Native's WebSocket. Browsers cannot send it on WebSocket or native EventSource. */
  token?: string;
  /** Order of preference (default ["websocket", "sse"]); unavailable ones are dropped. */
  transports?: Transport[];
  WebSocket?: WebSocketConstructor | typeof WebSocket | null;
  EventSource?: EventSourceConstructor | typeof EventSource | null;
  fetch?: (input: string, init?: { headers?: Record<string, string> }) => Promise<Response>;
  /** ms without any frame before a WebSocket is declared dead (default 40000). */
  heartbeatTimeout?: number;
  backoff?: BackoffOptions;
  /** A connection open this long resets the attempt count, ms (default 60000). */
  stableAfter?: number;
  /** WebSocket failures to open in a row before falling back to SSE (default 2). */
  fallbackAfter?: number;
  /** While on SSE, try WebSocket again this often, ms (default 300000). */
  upgradeInterval?: number;
  /** Send the token as a header to the WebSocket constructor (React Native's 3rd
   * argument). Default: true on React Native, false elsewhere. */
  webSocketHeaders?: boolean;
  /** Page size for the posts reloaded after a reset (default: the server's, 20). */
  postsLimit?: number;
  random?: () => number;
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (id: any) => void;
  now?: () => number;
  /** For visibilitychange (optional; not needed on React Native). */
  document?: { visibilityState?: string; addEventListener(type: string, fn: (e: any) => void): void;
    removeEventListener(type: string, fn: (e: any) => void): void } | null;
  /** For online/offline/pageshow (optional; not needed on React Native). */
  window?: { navigator?: { onLine?: boolean }; addEventListener(type: string, fn: (e: any) => void): void;
    removeEventListener(type: string, fn: (e: any) => void): void } | null;
}

export class BulletinError extends Error {
  constructor(code: string, message: string, extra?: {
    stream?: string | null; status?: number | null; frame?: unknown; cause?: unknown });
  /** A server error code (stream_not_found, bad_since, invalid_token, database_unavailable, …)
   * or one of http_error, reload_failed, handler_error. */
  code: string;
  /** The stream it concerns, if any. */
  stream: string | null;
  /** The HTTP status, for errors from HTTP requests. */
  status: number | null;
  /** The server's error frame or error body, when there was one. */
  frame: unknown;
  cause?: unknown;
}

export class Subscription {
  private constructor();
  /** The stream's slug. */
  readonly stream: string;
  /** The last applied seq (null until the first `subscribed` when since was null). */
  readonly lastSeq: number | null;
  /** False after unsubscribe() or an error that ended the subscription. */
  readonly active: boolean;
  /**
   * Editors only (WebSocket): say what you are doing here (null and "viewing" for the
   * stream itself); sent again after every reconnect. Readers are refused.
   */
  presence(post: number | null, state: "editing" | "viewing"): void;
  /** Stop following; no callback of this subscription runs afterwards. */
  unsubscribe(): void;
}

export class BulletinClient {
  constructor(options?: ClientOptions);
  /** The current status (see Status). */
  readonly status: Status;
  /** The transport in use, or null before the first connection. */
  readonly transport: Transport | null;
  /** Follow a stream (throws if this client already follows it, or after close()). */
  subscribe(stream: string, options?: SubscribeOptions): Subscription;
  on(name: "status", listener: (status: Status, detail: StatusDetail) => void): () => void;
  /** Errors not tied to a subscription with an onError (e.g. invalid_token). */
  on(name: "error", listener: (error: BulletinError) => void): () => void;
  /** Skip the back-off wait; replace a connection silent past the heartbeat timeout;
   * after a "closed" caused by the server (not by close()), try again. */
  reconnectNow(): void;
  /** Reload a stream over HTTP: what onReset receives. */
  /** The stream's state over HTTP; its posts only those of `filter`, if given. */
  loadSnapshot(stream: string, filter?: PostFilter): Promise<Snapshot>;
  /** Close for good. */
  close(): void;
}

export const PROTOCOL_VERSION: 1;
export const KNOWN_OPS: readonly string[];
export const CLOSE_POLICIES: Readonly<Record<number, ClosePolicy>>;
export function closePolicy(code: number): ClosePolicy;
export function backoffDelay(
  attempt: number, backoff: { initial: number; max: number }, random: () => number,
  floor?: number): number;

export default BulletinClient;
