// @ts-check
/**
 * The Server-Sent Events transport of a `BulletinClient`: one EventSource per followed
 * stream, for networks and clients where WebSocket does not work.
 *
 * Guarantees:
 * - At most one EventSource per subscription; one that was closed or replaced is ignored.
 * - Each EventSource resumes from the subscription's last applied seq (`?since=`), and
 *   a failed one is closed before we retry, so that EventSource's own reconnect (with its
 *   own Last-Event-ID) never races ours.
 * - A stream refused before it started is told apart from a network failure with a plain
 *   GET: 404, 401 and 403 end the subscription; anything else retries with back-off, and
 *   after enough failures in a row the client moves on to WebSocket when that comes next.
 * - The client's status is "live" once every followed stream's EventSource is open.
 *
 * Per-stream state (`_es`, `_esOpened`, `_esOpenedAt`, `_esTimer`, `_esAttempt`) lives on
 * each `Subscription`; the client's connection state stays on the `BulletinClient`.
 *
 * @module @bulletin/client/sse
 */

import {
  BulletinError, FATAL_STREAM_ERRORS, KNOWN_OPS, backoffDelay, filterQuery, parseFrame, streamPath,
} from "./protocol.js";

/**
 * @typedef {import("./client.js").BulletinClient} BulletinClient
 * @typedef {import("./client.js").Subscription} Subscription
 * @typedef {{
 *   api: string,
 *   EventSource: any,
 *   token: string | undefined,
 * }} SseOptions
 */

/**
 * @param {any} e a MessageEvent
 * @returns {any}
 */
function parseData(e) {
  return parseFrame(e ? e.data : undefined);
}

/**
 * One EventSource per stream of a client.
 */
export class SseTransport {
  /**
   * @param {BulletinClient} client
   * @param {SseOptions} options
   */
  constructor(client, options) {
    /** @private */
    this._client = client;
    /** @private */
    this._api = options.api;
    /** @private */
    this._EventSource = options.EventSource;
    /** @private */
    this._token = options.token;
  }

  /** Switch the client to SSE: open every stream, and schedule a WebSocket probe. */
  start() {
    const c = this._client;
    c.transport = "sse";
    let any = false;
    for (const sub of c._subs.values()) {
      if (!sub._es && !sub._resetting && !sub._ended) {
        this.open(sub);
        any = true;
      }
    }
    if (!any) this.updateStatus();
    c._websocket.scheduleProbe();
  }

  /** Close every stream's EventSource and cancel their retries. */
  stop() {
    const c = this._client;
    for (const sub of c._subs.values()) {
      c._clearTimeout(sub._esTimer);
      sub._esTimer = null;
      this.close(sub);
    }
  }

  /** Cancel every stream's pending retry (the network went away). */
  cancelRetries() {
    const c = this._client;
    for (const sub of c._subs.values()) {
      c._clearTimeout(sub._esTimer);
      sub._esTimer = null;
    }
  }

  /** Page visible, network back, or reconnectNow(): reopen every stream that waits. */
  wake() {
    const c = this._client;
    let reopened = false;
    for (const sub of c._subs.values()) {
      if (!sub._es && !sub._resetting && !sub._ended) {
        c._clearTimeout(sub._esTimer);
        sub._esTimer = null;
        reopened = true;
        this.open(sub);
      }
    }
    if (reopened && c.status !== "live") c._setStatus("reconnecting", { delay: 0 });
    this.updateStatus();
  }

  /**
   * @param {Subscription} sub
   */
  close(sub) {
    const es = sub._es;
    sub._es = null;
    sub._esOpened = false;
    if (es) {
      try { es.close(); } catch { /* closed */ }
    }
  }

  /**
   * Open the stream's EventSource, resuming after its last applied seq.
   * @param {Subscription} sub
   */
  open(sub) {
    const c = this._client;
    if (sub._es || sub._resetting || sub._ended || c._closed) return;
    c._clearTimeout(sub._esTimer);
    sub._esTimer = null;
    const query = [filterQuery(sub._options.filter)];
    if (sub.lastSeq != null) query.push(`since=${sub.lastSeq}`);
    const params = query.filter(Boolean).join("&");
    const url = `${this._api}${streamPath(sub.stream)}/events${params ? `?${params}` : ""}`;
    const ES = this._EventSource;
    /** @type {any} */
    let es;
    try {
      // Browsers' EventSource cannot send headers; polyfills (and RN libraries) accept them.
      es = this._token
        ? new ES(url, { headers: { Authorization: `Bearer ${this._token}` } })
        : new ES(url);
    } catch (err) {
      this._failed(sub, false, String(err));
      return;
    }
    sub._es = es;
    sub._esOpened = false;
    const mine = () => sub._es === es && !sub._ended && !c._closed;
    es.addEventListener("open", () => {
      if (!mine()) return;
      sub._esOpened = true;
      sub._esOpenedAt = c._now();
      c._offline = false;
      c._failures = 0;
      this.updateStatus();
    });
    /** @param {any} e */
    const onEvent = (e) => {
      if (!mine()) return;
      const frame = parseData(e);
      if (!frame || frame.type !== "event" || !Number.isSafeInteger(frame.seq)) return;
      if (frame.stream !== sub.stream) return;
      // SSE carries only the ops we listen to, so a seq jump here is an op this version
      // does not know (skipped); the server sends each stream in order.
      c._apply(sub, frame);
    };
    for (const op of KNOWN_OPS) es.addEventListener(op, onEvent);
    es.addEventListener("message", onEvent);
    es.addEventListener("subscribed", /** @param {any} e */ (e) => {
      if (!mine()) return;
      const frame = parseData(e);
      if (frame && Number.isSafeInteger(frame.seq)) c._subscribed(sub, frame.seq);
    });
    es.addEventListener("reset", () => {
      if (!mine()) return;
      this.close(sub); // the response ends; a bare EventSource would resume wrongly
      c._snapshots.reset(sub);
    });
    es.addEventListener("error", /** @param {any} e */ (e) => {
      if (!mine()) return;
      if (e && typeof e.data === "string") {
        // A server `error` record (e.g. stream_not_found); the response ends after it.
        const frame = parseData(e) || {};
        const code = typeof frame.code === "string" ? frame.code : "error";
        const error = new BulletinError(code, typeof frame.message === "string" ? frame.message
          : code, { stream: sub.stream, frame });
        if (FATAL_STREAM_ERRORS.has(code)) {
          c._fail(sub, error);
        } else {
          c._report(sub, error);
        }
        return;
      }
      // The connection failed or ended: close it so that EventSource's own reconnect
      // (with its own Last-Event-ID) cannot race ours; we resume from lastSeq.
      const opened = sub._esOpened;
      const openedAt = sub._esOpenedAt;
      this.close(sub);
      if (opened && c._now() - openedAt >= c._stableAfter) sub._esAttempt = 0;
      this._failed(sub, opened, "EventSource error");
    });
  }

  /**
   * @private
   * @param {Subscription} sub
   * @param {boolean} opened
   * @param {string} reason
   */
  async _failed(sub, opened, reason) {
    const c = this._client;
    if (sub._ended || c._closed || c._halted) return;
    if (!opened) {
      // Refused before the stream started: 404 (no such stream, or a draft), 401, 403,
      // or the network. EventSource cannot tell; a plain GET can.
      const status = await c._snapshots.status(sub.stream);
      if (sub._ended || c._closed || c._halted || sub._es) return;
      if (status === 404 || status === 401 || status === 403) {
        const code = status === 404 ? "stream_not_found" : status === 401 ? "invalid_token"
          : "forbidden";
        const error = new BulletinError(code, `GET /api/streams/${sub.stream}: HTTP ${status}`,
          { stream: sub.stream, status });
        c._fail(sub, error);
        return;
      }
      c._failures += 1;
      const next = c._tIndex + 1;
      if (c._failures >= c._fallbackAfter && next < c._transports.length &&
          c._transports[next] === "websocket" && !c._forbidden) {
        this.stop();
        c._switchTo(next);
        return;
      }
    }
    if (c._offline) {
      c._setStatus("offline");
      return;
    }
    const delay = backoffDelay(sub._esAttempt, c._backoff, c._random);
    c._attempt = sub._esAttempt;
    c._setStatus("reconnecting", { delay, reason });
    sub._esAttempt += 1;
    c._clearTimeout(sub._esTimer);
    sub._esTimer = c._setTimeout(() => {
      sub._esTimer = null;
      if (!c._offline) this.open(sub);
    }, delay);
  }

  /** Status "live" once every followed stream's EventSource is open. */
  updateStatus() {
    const c = this._client;
    if (c.transport !== "sse" || c._closed || c._halted) return;
    for (const sub of c._subs.values()) {
      if (!sub._ended && !sub._resetting && !sub._esOpened) return;
    }
    c._attempt = 0;
    c._setStatus("live");
  }
}
