// @ts-check
/**
 * Wire protocol v1 as the client speaks it: the names, codes and frame shapes; the error
 * the client reports (`BulletinError`, for the server's error frames and its own); and the
 * one back-off rule with which it answers close codes and failures.
 *
 * Guarantees: this module imports nothing and has no side effects, so anything (the other
 * client modules, a test in another language run with Node) can load it to read the
 * vocabulary. Every error the client reports is a `BulletinError` with a stable `code`.
 * Back-off delays are a pure function of their arguments (the randomness is passed in)
 * and lie in [0, window) with the window capped at `backoff.max`, so that a reconnect
 * storm after a deploy spreads out. The tables are the client's copy of server/core/closecodes.py and the ops
 * of server/core/protocol.py, kept in this one place; tests/test_wire_vocabulary.py keeps
 * them equal to the server's.
 *
 * @module @bulletin/client/protocol
 */

/** Wire protocol version spoken by this module. */
export const PROTOCOL_VERSION = 1;

/**
 * The event ops of protocol v1 (docs/events.md). On SSE these are the record names
 * listened for; on WebSocket every `event` frame is delivered, known op or not.
 */
export const KNOWN_OPS = Object.freeze([
  "post.created", "post.edited", "post.deleted", "post.pinned", "post.unpinned",
  "post.embedded", "stream.updated", "stream.ended",
]);

/**
 * What to do after each WebSocket close code, as in server/core/closecodes.py:
 * "now" = reconnect at once and resume, "backoff" = after a jittered delay, "no" = do not
 * retry blindly. Codes not listed (1006 network drop, anything new) mean "backoff".
 * @type {Readonly<Record<number, "now" | "backoff" | "no">>}
 */
export const CLOSE_POLICIES = Object.freeze({
  1000: "no", // normal (see closePolicy use in websocket.js: an unrequested 1000 backs off)
  1001: "backoff", // going away: server shutting down
  1002: "no", // protocol error
  1003: "no", // unsupported data (RFC 6455)
  1007: "no", // invalid payload data (RFC 6455)
  1008: "no", // policy violation (RFC 6455)
  1009: "no", // message too big: a client bug
  1011: "backoff", // internal error / ping timeout
  1012: "backoff", // service restart
  4000: "now", // slow consumer: resume at once
  4001: "no", // unauthorized: same credentials would be refused again
  4003: "no", // forbidden origin
  4008: "no", // too many refused frames: a client bug
  4009: "backoff", // too many frames per second: slow down
  4029: "no", // too many subscriptions
});

/**
 * The reconnect policy for a close code.
 * @param {number} code
 * @returns {"now" | "backoff" | "no"}
 */
export function closePolicy(code) {
  // own keys only (never one inherited from Object.prototype); present, hence the cast
  return Object.prototype.hasOwnProperty.call(CLOSE_POLICIES, code)
    ? /** @type {"now" | "backoff" | "no"} */ (CLOSE_POLICIES[code]) : "backoff";
}

/** Close codes after which the server is restarting, not refusing WebSocket. */
export const SHUTDOWN_CODES = new Set([1001, 1012]);

/** Errors that stop a subscription: the server will refuse it again. */
export const FATAL_STREAM_ERRORS = new Set([
  "stream_not_found", "bad_stream", "too_many_subscriptions", "forbidden",
  "invalid_token", "token_expired", "authentication_required", "editor_disabled",
]);

/**
 * @typedef {{tag?: string | null, pinned?: boolean}} PostFilter
 */

/**
 * The `subscribe` frame: follow `stream` from after `since` (null = only new events),
 * only the posts of `filter` in full (the others come as `filtered` stubs).
 * @param {string} stream
 * @param {number | null} since
 * @param {PostFilter} [filter]
 */
export function subscribeFrame(stream, since, filter) {
  /** @type {Record<string, unknown>} */
  const frame = { type: "subscribe", stream, since };
  if (filter && (filter.tag || filter.pinned)) frame.filter = filter;
  return frame;
}

/**
 * The query parameters that ask the HTTP API for a filter's posts (`tag=x&pinned=true`),
 * or "".
 * @param {PostFilter | undefined} filter
 */
export function filterQuery(filter) {
  const parts = [];
  if (filter?.tag) parts.push(`tag=${encodeURIComponent(filter.tag)}`);
  if (filter?.pinned) parts.push("pinned=true");
  return parts.join("&");
}

// A post's tag (server/core/protocol.py: TAG_PATTERN).
export const TAG_RE = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;

/**
 * The `presence` frame (editors only): what you are doing on a stream.
 * @param {string} stream
 * @param {number | null} post
 * @param {"editing" | "viewing"} state
 */
export function presenceFrame(stream, post, state) {
  return { type: "presence", stream, post, state };
}

/**
 * The `unsubscribe` frame.
 * @param {string} stream
 */
export function unsubscribeFrame(stream) {
  return { type: "unsubscribe", stream };
}

/**
 * A received frame (a WebSocket text message, an SSE record's data) as an object, or null
 * when it is not a string holding a JSON object or array.
 * @param {unknown} data
 * @returns {any}
 */
export function parseFrame(data) {
  if (typeof data !== "string") return null;
  try {
    const value = JSON.parse(data);
    return value && typeof value === "object" ? value : null;
  } catch {
    return null;
  }
}

/**
 * The HTTP API path of a stream (`/api/streams/{slug}`); its events and posts are below it.
 * @param {string} slug
 */
export function streamPath(slug) {
  return `/api/streams/${encodeURIComponent(slug)}`;
}

// --- errors ------------------------------------------------------------------------------

/**
 * An error reported to `onError` or to `client.on("error")`.
 */
export class BulletinError extends Error {
  /**
   * @param {string} code a stable code: a server error code (`stream_not_found`, …) or
   *   one of `http_error`, `reload_failed`, `handler_error`
   * @param {string} message
   * @param {{stream?: string | null, status?: number | null, frame?: any, cause?: unknown}} [extra]
   */
  constructor(code, message, extra = {}) {
    super(message);
    this.name = "BulletinError";
    /** @type {string} */
    this.code = code;
    /** @type {string | null} */
    this.stream = extra.stream ?? null;
    /** @type {number | null} HTTP status, for errors from HTTP requests */
    this.status = extra.status ?? null;
    /** @type {any} the server's error frame or body, when there was one */
    this.frame = extra.frame ?? null;
    if (extra.cause !== undefined) {
      // Error's optional `cause` (ES2022), set only when there is one; assigned through
      // the Error type so that the checker keeps it optional (`this.cause =` declares it)
      /** @type {Error} */ (this).cause = extra.cause;
    }
  }
}

// --- back-off ----------------------------------------------------------------------------

/**
 * Full-jitter back-off: a random delay in [0, min(max, max(floor, initial * 2^attempt))).
 * @param {number} attempt reconnects in a row before this one (0 for the first)
 * @param {{initial: number, max: number}} backoff
 * @param {() => number} random a function returning [0, 1)
 * @param {number} [floor] a minimum window (used after the server said it is going away)
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, backoff, random, floor = 0) {
  const window = Math.min(backoff.max, Math.max(floor, backoff.initial * 2 ** attempt));
  return random() * window;
}
