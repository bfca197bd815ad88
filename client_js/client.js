// @ts-check
/**
 * Bulletin live client: follow one or many streams of a Bulletin server.
 *
 * Dependency-free ES module for browsers (pages and embeds) and React Native. It speaks
 * wire protocol v1 (docs/protocol.md): one WebSocket for every followed stream, and
 * Server-Sent Events (one EventSource per stream) when WebSocket does not work. It keeps
 * the last applied seq of each stream, resumes from it after every reconnect, drops
 * duplicates, reconnects with exponential back-off and full jitter as the close codes
 * say (server/closecodes.py), watches heartbeats, and reloads state over HTTP on `reset`.
 *
 * Usage and options: docs/client.md. Types: index.d.ts.
 *
 * @module @bulletin/client
 */

/** Wire protocol version spoken by this module. */
export const PROTOCOL_VERSION = 1;

/**
 * The event ops of protocol v1 (docs/events.md). On SSE these are the record names
 * listened for; on WebSocket every `event` frame is delivered, known op or not.
 */
export const KNOWN_OPS = Object.freeze([
  "post.created", "post.edited", "post.deleted", "post.pinned", "post.unpinned",
  "stream.updated", "stream.ended",
]);

/**
 * What to do after each WebSocket close code, as in server/closecodes.py:
 * "now" = reconnect at once and resume, "backoff" = after a jittered delay, "no" = do not
 * retry blindly. Codes not listed (1006 network drop, anything new) mean "backoff".
 * @type {Readonly<Record<number, "now" | "backoff" | "no">>}
 */
export const CLOSE_POLICIES = Object.freeze({
  1000: "no", // normal (see closePolicy use below: an unrequested 1000 backs off)
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
  return Object.prototype.hasOwnProperty.call(CLOSE_POLICIES, code)
    ? CLOSE_POLICIES[code] : "backoff";
}

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

/** Errors that stop a subscription: the server will refuse it again. */
const FATAL_STREAM_ERRORS = new Set([
  "stream_not_found", "bad_stream", "too_many_subscriptions", "forbidden",
  "invalid_token", "authentication_required", "editor_disabled",
]);

/** Close codes after which the server is restarting, not refusing WebSocket. */
const SHUTDOWN_CODES = new Set([1001, 1012]);

const WS_OPEN = 1;

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
      /** @type {unknown} */
      this.cause = extra.cause;
    }
  }
}

/**
 * @typedef {"connecting" | "live" | "reconnecting" | "offline" | "closed"} Status
 * @typedef {"websocket" | "sse"} Transport
 * @typedef {{transport: Transport | null, attempt: number, delay: number | null,
 *            code: number | null, reason: string | null}} StatusDetail
 * @typedef {{type: "event", stream: string, seq: number, op: string, at?: string,
 *            post?: any, stream_info?: any, [key: string]: any}} BulletinEvent
 * @typedef {{stream: any, posts: any[], pinned: any[]}} Snapshot
 * @typedef {{
 *   since?: number | null,
 *   onEvent?: (event: BulletinEvent) => void,
 *   onReset?: (snapshot: Snapshot) => void,
 *   onSubscribed?: (seq: number) => void,
 *   onError?: (error: BulletinError) => void,
 * }} SubscribeOptions
 * @typedef {(fn: () => void, ms: number) => any} SetTimeoutFn
 * @typedef {(id: any) => void} ClearTimeoutFn
 * @typedef {{
 *   url?: string,
 *   token?: string,
 *   transports?: Transport[],
 *   WebSocket?: any,
 *   EventSource?: any,
 *   fetch?: (input: string, init?: any) => Promise<any>,
 *   heartbeatTimeout?: number,
 *   backoff?: {initial?: number, max?: number, goingAway?: number},
 *   stableAfter?: number,
 *   fallbackAfter?: number,
 *   upgradeInterval?: number,
 *   webSocketHeaders?: boolean,
 *   postsLimit?: number,
 *   random?: () => number,
 *   setTimeout?: SetTimeoutFn,
 *   clearTimeout?: ClearTimeoutFn,
 *   now?: () => number,
 *   document?: any,
 *   window?: any,
 * }} ClientOptions
 */

/**
 * The base URLs: `api` (http[s]://host[/prefix]) and `ws` (ws[s]://host[/prefix]/ws).
 * @param {string} url
 * @param {any} location
 * @returns {{api: string, ws: string}}
 */
function deriveUrls(url, location) {
  let base = String(url).trim();
  if (base.startsWith("/") && !base.startsWith("//") && location && location.origin) {
    base = String(location.origin) + base;
  }
  base = base.replace(/\/+$/, "");
  if (/^wss?:\/\//i.test(base)) {
    base = base.replace(/^ws/i, "http").replace(/\/ws$/i, "");
  }
  if (!/^https?:\/\/[^/]/i.test(base)) {
    throw new TypeError(`BulletinClient: url must be an http(s) URL, got ${JSON.stringify(url)}`);
  }
  return { api: base, ws: base.replace(/^http/i, "ws") + "/ws" };
}

/**
 * One followed stream. Made by `client.subscribe()`.
 */
export class Subscription {
  /**
   * @param {BulletinClient} client
   * @param {string} stream
   * @param {SubscribeOptions} options
   */
  constructor(client, stream, options) {
    /** @type {string} the stream's slug */
    this.stream = stream;
    /** @type {number | null} the last applied seq (null until the first `subscribed`) */
    this.lastSeq = options.since ?? null;
    /** @internal */
    this._client = client;
    /** @internal */
    this._options = options;
    /** @internal @type {boolean} */
    this._ended = false;
    /** @internal @type {boolean} a reset reload is in progress */
    this._resetting = false;
    /** @internal @type {any} */
    this._resetTimer = null;
    /** @internal @type {number} */
    this._resetAttempt = 0;
    // Server-Sent Events state (one EventSource per stream)
    /** @internal @type {any} */
    this._es = null;
    /** @internal @type {boolean} */
    this._esOpened = false;
    /** @internal @type {number} */
    this._esOpenedAt = 0;
    /** @internal @type {any} */
    this._esTimer = null;
    /** @internal @type {number} */
    this._esAttempt = 0;
  }

  /** Whether this subscription still receives events (false after unsubscribe or a fatal error). */
  get active() {
    return !this._ended;
  }

  /** Stop following the stream. No callback of this subscription runs afterwards. */
  unsubscribe() {
    this._client._remove(this);
  }
}

/**
 * A connection to a Bulletin server that follows one or many streams.
 */
export class BulletinClient {
  /**
   * @param {ClientOptions} [options]
   */
  constructor(options = {}) {
    const g = /** @type {any} */ (globalThis);
    const location = g.location;
    const url = options.url ?? (location && location.origin);
    if (!url) {
      throw new TypeError("BulletinClient: no url given and no globalThis.location to default to");
    }
    const urls = deriveUrls(url, location);
    /** @private */
    this._apiUrl = urls.api;
    /** @private */
    this._wsUrl = urls.ws;
    /** @private @type {string | undefined} */
    this._token = options.token || undefined;

    /** @private */
    this._WebSocket = options.WebSocket ?? g.WebSocket;
    /** @private */
    this._EventSource = options.EventSource ?? g.EventSource;
    const fetchFn = options.fetch ?? (typeof g.fetch === "function" ? g.fetch.bind(g) : undefined);
    /** @private @type {((input: string, init?: any) => Promise<any>) | undefined} */
    this._fetch = fetchFn;

    const wanted = options.transports ?? ["websocket", "sse"];
    /** @private @type {Transport[]} */
    this._transports = wanted.filter((t, i) => wanted.indexOf(t) === i && (
      (t === "websocket" && typeof this._WebSocket === "function") ||
      (t === "sse" && typeof this._EventSource === "function")));
    if (this._transports.length === 0) {
      throw new TypeError(
        `BulletinClient: none of the transports ${JSON.stringify(wanted)} is available ` +
        "(pass WebSocket or EventSource)");
    }

    /** @private */
    this._heartbeatTimeout = options.heartbeatTimeout ?? 40000;
    /** @private */
    this._backoff = {
      initial: options.backoff?.initial ?? 500,
      max: options.backoff?.max ?? 30000,
    };
    /** @private */
    this._goingAwayWindow = options.backoff?.goingAway ?? 2000;
    /** @private */
    this._stableAfter = options.stableAfter ?? 60000;
    /** @private */
    this._fallbackAfter = Math.max(1, options.fallbackAfter ?? 2);
    /** @private */
    this._upgradeInterval = options.upgradeInterval ?? 300000;
    /** @private */
    this._postsLimit = options.postsLimit;
    const nav = g.navigator;
    /** @private */
    this._wsHeaders = options.webSocketHeaders ?? Boolean(nav && nav.product === "ReactNative");

    const random = options.random ?? Math.random;
    const setTimeoutFn = options.setTimeout ?? g.setTimeout;
    const clearTimeoutFn = options.clearTimeout ?? g.clearTimeout;
    const now = options.now ?? Date.now;
    // Called as plain functions, never as methods of `options` (browsers throw
    // "Illegal invocation" for window.setTimeout called on another object).
    /** @private @type {() => number} */
    this._random = () => random();
    /** @private @type {SetTimeoutFn} */
    this._setTimeout = (fn, ms) => setTimeoutFn(fn, ms);
    /** @private @type {ClearTimeoutFn} */
    this._clearTimeout = (id) => { if (id != null) clearTimeoutFn(id); };
    /** @private @type {() => number} */
    this._now = () => now();

    /** @type {Status} */
    this.status = "connecting";
    /** @type {Transport | null} the transport in use (null before the first connection) */
    this.transport = null;

    /** @private @type {Map<string, Subscription>} */
    this._subs = new Map();
    /** @private @type {{status: Set<Function>, error: Set<Function>}} */
    this._listeners = { status: new Set(), error: new Set() };
    /** @private */
    this._tIndex = 0;
    /** @private reconnects in a row */
    this._attempt = 0;
    /** @private the back-off window floor after a going-away close, until a connection opens */
    this._floor = 0;
    /** @private consecutive failures to open the current transport */
    this._failures = 0;
    /** @private the server refused this page's origin on WebSocket (4003) */
    this._forbidden = false;
    /** @private WebSocket has delivered frames at least once on this client */
    this._wsWorked = false;
    /** @private @type {any} */
    this._timer = null;
    /** @private @type {any} */
    this._probeTimer = null;
    /** @private @type {any} */
    this._probeWs = null;
    /** @private @type {any} */
    this._ws = null;
    /** @private */
    this._wsOpened = false;
    /** @private */
    this._gotFrame = false;
    /** @private */
    this._openedAt = 0;
    /** @private */
    this._lastFrameAt = 0;
    /** @private @type {any} */
    this._watchdog = null;
    /** @private @type {Map<string, "subscribing" | "subscribed" | "unsubscribing">} */
    this._server = new Map();
    /** @private */
    this._started = false;
    /** @private close() was called */
    this._closed = false;
    /** @private @type {{code: number | null, reason: string | null} | null} stopped by a "no" close */
    this._halted = null;
    /** @private */
    this._offline = false;

    /** @private */
    this._document = options.document ?? g.document;
    /** @private */
    this._window = options.window ?? g.window;
    /** @private */
    this._onVisibility = () => {
      if (this._document && this._document.visibilityState === "visible") this._wake("visible");
    };
    /** @private */
    this._onOnline = () => this._wake("online");
    /** @private */
    this._onOffline = () => this._goOffline();
    /** @private @param {any} e */
    this._onPageShow = (e) => { if (e && e.persisted) this._wake("pageshow"); };
    if (this._document && typeof this._document.addEventListener === "function") {
      this._document.addEventListener("visibilitychange", this._onVisibility);
    }
    if (this._window && typeof this._window.addEventListener === "function") {
      this._window.addEventListener("online", this._onOnline);
      this._window.addEventListener("offline", this._onOffline);
      this._window.addEventListener("pageshow", this._onPageShow);
      const wnav = this._window.navigator;
      if (wnav && wnav.onLine === false) this._offline = true;
    }
  }

  // --- public API ------------------------------------------------------------------------

  /**
   * Follow a stream. The connection opens with the first subscription.
   * @param {string} stream the stream's slug
   * @param {SubscribeOptions} [options]
   * @returns {Subscription}
   */
  subscribe(stream, options = {}) {
    if (this._closed) throw new Error("BulletinClient: subscribe() after close()");
    if (typeof stream !== "string" || stream === "") {
      throw new TypeError("BulletinClient: subscribe() needs a stream slug");
    }
    if (this._subs.has(stream)) {
      throw new Error(`BulletinClient: already subscribed to ${JSON.stringify(stream)}`);
    }
    const since = options.since;
    if (since != null && !(Number.isSafeInteger(since) && since >= 0)) {
      throw new TypeError("BulletinClient: since must be null or an integer >= 0");
    }
    const sub = new Subscription(this, stream, options);
    this._subs.set(stream, sub);
    if (!this._started) {
      this._start();
    } else if (this._transportName() === "websocket") {
      if (this._ws && this._wsOpened) this._wsSubscribe(sub);
    } else if (this.transport === "sse" && !this._offline && !this._halted) {
      this._openEs(sub);
    }
    return sub;
  }

  /**
   * Listen to "status" (status, detail) or "error" (error) events.
   * @param {"status" | "error"} name
   * @param {Function} listener
   * @returns {() => void} call to stop listening
   */
  on(name, listener) {
    const set = this._listeners[name];
    if (!set) throw new TypeError(`BulletinClient: unknown event ${JSON.stringify(name)}`);
    set.add(listener);
    return () => { set.delete(listener); };
  }

  /**
   * Connect now instead of waiting for the back-off timer; if connected but silent for
   * longer than the heartbeat timeout, treat the connection as dead and reconnect. After
   * a close the server said not to retry (status "closed"), this is the way to try again.
   * Does nothing after close().
   */
  reconnectNow() {
    if (this._closed) return;
    if (this._halted) {
      this._halted = null;
      this._attempt = 0;
      this._failures = 0;
      this._offline = false;
      if (this._started) {
        this._setStatus("reconnecting", { delay: 0 });
        this._connect();
      } else {
        this._start();
      }
      return;
    }
    this._wake("manual");
  }

  /** Close everything for good: status "closed", no reconnect, no more callbacks. */
  close() {
    if (this._closed) return;
    this._closed = true;
    this._clearTimeout(this._timer);
    this._clearTimeout(this._probeTimer);
    this._timer = this._probeTimer = null;
    if (this._probeWs) {
      const probe = this._probeWs;
      this._probeWs = null;
      this._detach(probe);
      try { probe.close(1000, "client closed"); } catch { /* already closed */ }
    }
    this._dropWs();
    for (const sub of this._subs.values()) this._endSub(sub);
    this._subs.clear();
    if (this._document && typeof this._document.removeEventListener === "function") {
      this._document.removeEventListener("visibilitychange", this._onVisibility);
    }
    if (this._window && typeof this._window.removeEventListener === "function") {
      this._window.removeEventListener("online", this._onOnline);
      this._window.removeEventListener("offline", this._onOffline);
      this._window.removeEventListener("pageshow", this._onPageShow);
    }
    this._setStatus("closed", { code: 1000, reason: "client closed" });
  }

  // --- status and callbacks --------------------------------------------------------------

  /**
   * @private
   * @param {Status} status
   * @param {{delay?: number | null, code?: number | null, reason?: string | null}} [extra]
   */
  _setStatus(status, extra = {}) {
    if (status === this.status && status !== "reconnecting") return;
    if (this.status === "closed" && this._closed) return;
    this.status = status;
    /** @type {StatusDetail} */
    const detail = {
      transport: this.transport,
      attempt: this._attempt,
      delay: extra.delay ?? null,
      code: extra.code ?? null,
      reason: extra.reason ?? null,
    };
    for (const fn of [...this._listeners.status]) {
      try {
        fn(status, detail);
      } catch (err) {
        console.error("Bulletin: a status listener threw", err);
      }
    }
  }

  /**
   * @private
   * @param {BulletinError} error
   */
  _emitError(error) {
    if (this._listeners.error.size === 0) return;
    for (const fn of [...this._listeners.error]) {
      try {
        fn(error);
      } catch (err) {
        console.error("Bulletin: an error listener threw", err);
      }
    }
  }

  /**
   * Call one of a subscription's handlers; what it throws is reported, never propagated.
   * @private
   * @param {Subscription} sub
   * @param {"onEvent" | "onReset" | "onSubscribed" | "onError"} name
   * @param {any} arg
   */
  _call(sub, name, arg) {
    const fn = /** @type {any} */ (sub)._options[name];
    if (typeof fn !== "function") return;
    try {
      fn(arg);
    } catch (err) {
      const onError = /** @type {any} */ (sub)._options.onError;
      if (name !== "onError" && typeof onError === "function") {
        try {
          onError(new BulletinError("handler_error", `${name} threw: ${String(err)}`,
            { stream: sub.stream, cause: err }));
          return;
        } catch (err2) {
          console.error(`Bulletin: onError threw for ${sub.stream}`, err2);
        }
      }
      console.error(`Bulletin: ${name} threw for ${sub.stream}`, err);
    }
  }

  /**
   * @private
   * @param {Subscription} sub
   * @param {BulletinError} error
   */
  _report(sub, error) {
    const onError = /** @type {any} */ (sub)._options.onError;
    if (typeof onError === "function") this._call(sub, "onError", error);
    else this._emitError(error);
  }

  // --- connection lifecycle --------------------------------------------------------------

  /** @private @returns {Transport} */
  _transportName() {
    return this._transports[this._tIndex];
  }

  /** @private */
  _start() {
    if (this._started || this._closed) return;
    this._started = true;
    if (this._halted) return;
    if (this._offline) {
      this._setStatus("offline");
      return;
    }
    this._connect();
  }

  /** @private */
  _connect() {
    this._clearTimeout(this._timer);
    this._timer = null;
    if (this._closed || this._halted) return;
    if (this._transportName() === "websocket") {
      this._openWebSocket(false);
    } else {
      this._startSse();
    }
  }

  /**
   * Schedule a reconnect of the current transport.
   * @private
   * @param {"now" | "backoff"} policy
   * @param {number | null} code
   * @param {string | null} reason
   */
  _schedule(policy, code, reason) {
    this._clearTimeout(this._timer);
    this._timer = null;
    if (this._offline) {
      this._setStatus("offline", { code, reason });
      return;
    }
    const delay = policy === "now" && this._attempt === 0
      ? 0 : backoffDelay(this._attempt, this._backoff, this._random, this._floor);
    this._setStatus("reconnecting", { delay, code, reason });
    this._attempt += 1;
    this._timer = this._setTimeout(() => {
      this._timer = null;
      this._connect();
    }, delay);
  }

  /**
   * Stop: the server said retrying would be refused again.
   * @private
   * @param {number | null} code
   * @param {string | null} reason
   */
  _halt(code, reason) {
    this._halted = { code, reason };
    this._clearTimeout(this._timer);
    this._clearTimeout(this._probeTimer);
    this._timer = this._probeTimer = null;
    this._stopSse();
    this._setStatus("closed", { code, reason });
  }

  /**
   * Page visible, network back, or reconnectNow(): skip any wait; replace a silent socket.
   * @private
   * @param {string} why
   */
  _wake(why) {
    if (this._closed || this._halted) return;
    if (why === "online" || why === "manual") {
      if (why === "online") this._attempt = 0;
      this._offline = false;
    }
    if (this._offline || !this._started) return;
    if (this._transportName() === "websocket") {
      if (this._ws) {
        if (this._wsOpened && this._now() - this._lastFrameAt > this._heartbeatTimeout) {
          this._dropWs();
          this._setStatus("reconnecting", { delay: 0, reason: "heartbeat timeout" });
          this._connect();
        } else if (this._wsOpened) {
          this._setStatus("live");
        }
        return; // connecting, or alive
      }
      this._setStatus("reconnecting", { delay: 0 });
      this._connect();
      return;
    }
    // SSE: reopen every stream that waits for its retry timer
    let reopened = false;
    for (const sub of this._subs.values()) {
      if (!sub._es && !sub._resetting && !sub._ended) {
        this._clearTimeout(sub._esTimer);
        sub._esTimer = null;
        reopened = true;
        this._openEs(sub);
      }
    }
    if (reopened && this.status !== "live") this._setStatus("reconnecting", { delay: 0 });
    this._sseStatus();
  }

  /** @private */
  _goOffline() {
    if (this._closed || this._halted) return;
    this._offline = true;
    this._clearTimeout(this._timer);
    this._timer = null;
    for (const sub of this._subs.values()) {
      this._clearTimeout(sub._esTimer);
      sub._esTimer = null;
    }
    if (this._started) this._setStatus("offline");
  }

  // --- WebSocket -------------------------------------------------------------------------

  /**
   * @private
   * @param {boolean} probe a background attempt to leave SSE for WebSocket
   */
  _openWebSocket(probe) {
    const WS = this._WebSocket;
    /** @type {any} */
    let ws;
    try {
      if (this._token && this._wsHeaders) {
        // React Native: new WebSocket(url, protocols, {headers})
        ws = new WS(this._wsUrl, [], { headers: { Authorization: `Bearer ${this._token}` } });
      } else {
        ws = new WS(this._wsUrl);
      }
    } catch (err) {
      if (probe) {
        this._scheduleProbe();
      } else {
        this._ws = null;
        this._afterClose(1006, `WebSocket failed: ${String(err)}`,
          { opened: false, gotFrame: false, openedAt: 0 });
      }
      return;
    }
    if (probe) {
      this._probeWs = ws;
    } else {
      this._ws = ws;
      this._wsOpened = false;
      this._gotFrame = false;
      this._server.clear();
    }
    ws.onopen = () => this._onWsOpen(ws);
    /** @param {any} ev */
    ws.onmessage = (ev) => this._onWsMessage(ws, ev);
    ws.onerror = () => this._onWsClose(ws, 1006, "WebSocket error");
    /** @param {any} ev */
    ws.onclose = (ev) => this._onWsClose(ws, ev && typeof ev.code === "number" ? ev.code : 1006,
      ev && ev.reason ? String(ev.reason) : null);
  }

  /**
   * @private
   * @param {any} ws
   */
  _detach(ws) {
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
  }

  /**
   * Forget the current socket (closing it if needed); its late events are ignored.
   * @private
   */
  _dropWs() {
    const ws = this._ws;
    this._clearTimeout(this._watchdog);
    this._watchdog = null;
    this._server.clear();
    if (!ws) return;
    this._ws = null;
    this._wsOpened = false;
    this._detach(ws);
    try {
      ws.close(1000);
    } catch { /* already closing */ }
  }

  /**
   * @private
   * @param {any} ws
   */
  _onWsOpen(ws) {
    if (this._closed) return;
    if (ws === this._probeWs) {
      // WebSocket works again: leave SSE. Events both carried are dropped by seq.
      this._probeWs = null;
      this._stopSse();
      this._tIndex = this._transports.indexOf("websocket");
      this._failures = this._fallbackAfter - 1; // one more failure and we go back to SSE
      this._ws = ws;
      this._gotFrame = false;
      this._server.clear();
    } else if (ws !== this._ws) {
      return;
    }
    this._wsOpened = true;
    this._openedAt = this._lastFrameAt = this._now();
    this._floor = 0;
    this._offline = false;
    this.transport = "websocket";
    this._setStatus("live");
    this._armWatchdog(ws, this._heartbeatTimeout);
    for (const sub of this._subs.values()) this._wsSubscribe(sub);
  }

  /**
   * @private
   * @param {any} ws
   * @param {number} ms
   */
  _armWatchdog(ws, ms) {
    this._clearTimeout(this._watchdog);
    this._watchdog = this._setTimeout(() => {
      this._watchdog = null;
      if (ws !== this._ws || this._closed) return;
      const silent = this._now() - this._lastFrameAt;
      if (silent >= this._heartbeatTimeout) {
        const info = { opened: true, gotFrame: this._gotFrame, openedAt: this._openedAt };
        this._dropWs();
        this._afterClose(1006, "heartbeat timeout", info);
      } else {
        this._armWatchdog(ws, this._heartbeatTimeout - silent);
      }
    }, ms);
  }

  /**
   * @private
   * @param {any} ws
   * @param {number} code
   * @param {string | null} reason
   */
  _onWsClose(ws, code, reason) {
    if (ws === this._probeWs) {
      this._probeWs = null;
      this._detach(ws);
      try { ws.close(); } catch { /* closed */ }
      this._scheduleProbe();
      return;
    }
    if (ws !== this._ws) return;
    const info = { opened: this._wsOpened, gotFrame: this._gotFrame, openedAt: this._openedAt };
    this._clearTimeout(this._watchdog);
    this._watchdog = null;
    this._server.clear();
    this._ws = null;
    this._wsOpened = false;
    this._detach(ws);
    if (code === 1006 && reason === "WebSocket error") {
      try { ws.close(); } catch { /* closed */ }
    }
    this._afterClose(code, reason, info);
  }

  /**
   * Decide what follows a closed WebSocket.
   * @private
   * @param {number} code
   * @param {string | null} reason
   * @param {{opened: boolean, gotFrame: boolean, openedAt: number}} info
   */
  _afterClose(code, reason, info) {
    if (this._closed || this._halted) return;
    if (info.opened && this._now() - info.openedAt >= this._stableAfter) this._attempt = 0;
    // A 1000 we did not ask for (a proxy, say) is unexpected: back off and come back.
    const policy = code === 1000 ? "backoff" : closePolicy(code);
    if (policy === "no") {
      if (code === 4003 && this._transports.includes("sse")) {
        this._forbidden = true;
        this._switchTo(this._transports.indexOf("sse"));
        return;
      }
      this._halt(code, reason);
      return;
    }
    if (SHUTDOWN_CODES.has(code)) this._floor = this._goingAwayWindow;
    const failed = !info.opened ||
      (!info.gotFrame && policy === "backoff" && !SHUTDOWN_CODES.has(code));
    this._failures = failed ? this._failures + 1 : 0;
    // Once WebSocket has worked on this network, failures are outages, not a blocking
    // proxy: keep backing off on WebSocket (SSE would not do better).
    if (failed && !this._wsWorked && this._failures >= this._fallbackAfter &&
        this._tIndex < this._transports.length - 1) {
      this._switchTo(this._tIndex + 1);
      return;
    }
    this._schedule(policy, code, reason);
  }

  /**
   * Move to another transport and connect with it at once.
   * @private
   * @param {number} index
   */
  _switchTo(index) {
    this._tIndex = index;
    this._failures = 0;
    this._clearTimeout(this._timer);
    this._timer = null;
    if (this._offline) {
      this._setStatus("offline");
      return;
    }
    this._connect();
  }

  /**
   * @private
   * @param {any} ws
   * @param {any} ev
   */
  _onWsMessage(ws, ev) {
    if (ws !== this._ws || this._closed) return;
    this._gotFrame = true;
    this._wsWorked = true;
    this._lastFrameAt = this._now();
    if (this._offline || this.status !== "live") {
      this._offline = false;
      this._setStatus("live");
    }
    const data = ev ? ev.data : undefined;
    if (typeof data !== "string") return; // binary frames are not part of protocol v1
    /** @type {any} */
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (!frame || typeof frame !== "object") return;
    switch (frame.type) {
      case "event": this._wsEvent(frame); break;
      case "subscribed": this._wsSubscribed(frame); break;
      case "unsubscribed": this._wsUnsubscribed(frame.stream); break;
      case "reset": this._wsReset(frame); break;
      case "error": this._wsError(frame); break;
      default: break; // heartbeat, and frame types this version does not know
    }
  }

  /**
   * @private
   * @param {any} frame
   */
  _send(frame) {
    const ws = this._ws;
    if (!ws || !this._wsOpened || ws.readyState !== WS_OPEN) return false;
    try {
      ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false; // the close event follows
    }
  }

  /**
   * @private
   * @param {Subscription} sub
   */
  _wsSubscribe(sub) {
    if (sub._ended || sub._resetting) return;
    if (this._server.has(sub.stream)) return; // subscribed, subscribing, or unsubscribing first
    if (this._send({ type: "subscribe", stream: sub.stream, since: sub.lastSeq })) {
      this._server.set(sub.stream, "subscribing");
    }
  }

  /**
   * Ask the server to start this stream over from our lastSeq.
   * @private
   * @param {Subscription} sub
   */
  _wsResync(sub) {
    if (this._server.get(sub.stream) === "unsubscribing") return;
    if (this._send({ type: "unsubscribe", stream: sub.stream })) {
      this._server.set(sub.stream, "unsubscribing");
    }
  }

  /**
   * @private
   * @param {any} frame
   */
  _wsEvent(frame) {
    const sub = typeof frame.stream === "string" ? this._subs.get(frame.stream) : undefined;
    if (!sub || sub._ended || sub._resetting) return;
    if (this._server.get(sub.stream) === "unsubscribing") return;
    if (!Number.isSafeInteger(frame.seq)) return;
    const last = sub.lastSeq;
    if (last != null && frame.seq > last + 1) {
      // Never expected on WebSocket; do not apply out of order: start over from lastSeq.
      this._wsResync(sub);
      return;
    }
    this._apply(sub, frame);
  }

  /**
   * Apply an event once, in order.
   * @private
   * @param {Subscription} sub
   * @param {any} frame
   */
  _apply(sub, frame) {
    if (sub.lastSeq != null && frame.seq <= sub.lastSeq) return; // duplicate
    sub.lastSeq = frame.seq;
    this._call(sub, "onEvent", frame);
  }

  /**
   * @private
   * @param {Subscription} sub
   * @param {number} seq
   */
  _subscribed(sub, seq) {
    if (sub.lastSeq == null) sub.lastSeq = seq;
    this._call(sub, "onSubscribed", seq);
  }

  /**
   * @private
   * @param {any} frame
   */
  _wsSubscribed(frame) {
    const slug = frame.stream;
    if (typeof slug !== "string" || !Number.isSafeInteger(frame.seq)) return;
    const state = this._server.get(slug);
    if (state === "unsubscribing") return; // its `unsubscribed` follows
    const sub = this._subs.get(slug);
    if (!sub || sub._ended) {
      this._server.delete(slug);
      if (this._send({ type: "unsubscribe", stream: slug })) this._server.set(slug, "unsubscribing");
      return;
    }
    this._server.set(slug, "subscribed");
    sub._resetAttempt = 0;
    this._subscribed(sub, frame.seq);
  }

  /**
   * @private
   * @param {unknown} slug
   */
  _wsUnsubscribed(slug) {
    if (typeof slug !== "string") return;
    this._server.delete(slug);
    const sub = this._subs.get(slug);
    if (sub && !sub._ended) this._wsSubscribe(sub); // a resync, or subscribed again meanwhile
  }

  /**
   * @private
   * @param {any} frame
   */
  _wsReset(frame) {
    const slug = frame.stream;
    if (typeof slug !== "string") return;
    this._server.delete(slug); // a reset means we are not subscribed
    const sub = this._subs.get(slug);
    if (sub && !sub._ended) this._reset(sub);
  }

  /**
   * @private
   * @param {any} frame
   */
  _wsError(frame) {
    const slug = typeof frame.stream === "string" ? frame.stream : null;
    const code = typeof frame.code === "string" ? frame.code : "error";
    const message = typeof frame.message === "string" ? frame.message : code;
    if (slug && code === "not_subscribed") {
      this._wsUnsubscribed(slug);
      return;
    }
    if (slug && code === "already_subscribed") {
      this._server.set(slug, "subscribed");
      return;
    }
    const error = new BulletinError(code, message, { stream: slug, frame });
    const sub = slug ? this._subs.get(slug) : undefined;
    if (sub && !sub._ended && code === "unavailable") {
      // The server could not read the stream just now (its database is busy or away):
      // we are not subscribed; ask again after a growing, jittered delay.
      this._server.delete(sub.stream);
      this._report(sub, error);
      this._clearTimeout(sub._resetTimer);
      const delay = backoffDelay(sub._resetAttempt, this._backoff, this._random);
      sub._resetAttempt += 1;
      sub._resetTimer = this._setTimeout(() => {
        sub._resetTimer = null;
        this._wsSubscribe(sub);
      }, delay);
      return;
    }
    if (sub && !sub._ended) {
      if (FATAL_STREAM_ERRORS.has(code)) {
        this._server.delete(sub.stream);
        this._fail(sub, error);
      } else {
        this._report(sub, error);
      }
      return;
    }
    this._emitError(error);
  }

  // --- Server-Sent Events ----------------------------------------------------------------

  /** @private */
  _startSse() {
    this.transport = "sse";
    let any = false;
    for (const sub of this._subs.values()) {
      if (!sub._es && !sub._resetting && !sub._ended) {
        this._openEs(sub);
        any = true;
      }
    }
    if (!any) this._sseStatus();
    this._scheduleProbe();
  }

  /** @private */
  _stopSse() {
    for (const sub of this._subs.values()) {
      this._clearTimeout(sub._esTimer);
      sub._esTimer = null;
      this._closeEs(sub);
    }
  }

  /** @private */
  _scheduleProbe() {
    this._clearTimeout(this._probeTimer);
    this._probeTimer = null;
    const wsIndex = this._transports.indexOf("websocket");
    if (wsIndex < 0 || wsIndex > this._tIndex || this._forbidden || this._closed || this._halted) {
      return;
    }
    if (this._transportName() === "websocket") return;
    this._probeTimer = this._setTimeout(() => {
      this._probeTimer = null;
      if (this._closed || this._halted || this.transport !== "sse") return;
      if (this._offline) {
        this._scheduleProbe();
        return;
      }
      this._openWebSocket(true);
    }, this._upgradeInterval);
  }

  /**
   * @private
   * @param {Subscription} sub
   */
  _closeEs(sub) {
    const es = sub._es;
    sub._es = null;
    sub._esOpened = false;
    if (es) {
      try { es.close(); } catch { /* closed */ }
    }
  }

  /**
   * @private
   * @param {Subscription} sub
   */
  _openEs(sub) {
    if (sub._es || sub._resetting || sub._ended || this._closed) return;
    this._clearTimeout(sub._esTimer);
    sub._esTimer = null;
    let url = `${this._apiUrl}/api/streams/${encodeURIComponent(sub.stream)}/events`;
    if (sub.lastSeq != null) url += `?since=${sub.lastSeq}`;
    const ES = this._EventSource;
    /** @type {any} */
    let es;
    try {
      // Browsers' EventSource cannot send headers; polyfills (and RN libraries) accept them.
      es = this._token
        ? new ES(url, { headers: { Authorization: `Bearer ${this._token}` } })
        : new ES(url);
    } catch (err) {
      this._esFailed(sub, false, String(err));
      return;
    }
    sub._es = es;
    sub._esOpened = false;
    const mine = () => sub._es === es && !sub._ended && !this._closed;
    es.addEventListener("open", () => {
      if (!mine()) return;
      sub._esOpened = true;
      sub._esOpenedAt = this._now();
      this._offline = false;
      this._failures = 0;
      this._sseStatus();
    });
    /** @param {any} e */
    const onEvent = (e) => {
      if (!mine()) return;
      const frame = parseData(e);
      if (!frame || frame.type !== "event" || !Number.isSafeInteger(frame.seq)) return;
      if (frame.stream !== sub.stream) return;
      // SSE carries only the ops we listen to, so a seq jump here is an op this version
      // does not know (skipped); the server sends each stream in order.
      this._apply(sub, frame);
    };
    for (const op of KNOWN_OPS) es.addEventListener(op, onEvent);
    es.addEventListener("message", onEvent);
    es.addEventListener("subscribed", /** @param {any} e */ (e) => {
      if (!mine()) return;
      const frame = parseData(e);
      if (frame && Number.isSafeInteger(frame.seq)) this._subscribed(sub, frame.seq);
    });
    es.addEventListener("reset", () => {
      if (!mine()) return;
      this._closeEs(sub); // the response ends; a bare EventSource would resume wrongly
      this._reset(sub);
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
          this._fail(sub, error);
        } else {
          this._report(sub, error);
        }
        return;
      }
      // The connection failed or ended: close it so that EventSource's own reconnect
      // (with its own Last-Event-ID) cannot race ours; we resume from lastSeq.
      const opened = sub._esOpened;
      const openedAt = sub._esOpenedAt;
      this._closeEs(sub);
      if (opened && this._now() - openedAt >= this._stableAfter) sub._esAttempt = 0;
      this._esFailed(sub, opened, "EventSource error");
    });
  }

  /**
   * @private
   * @param {Subscription} sub
   * @param {boolean} opened
   * @param {string} reason
   */
  async _esFailed(sub, opened, reason) {
    if (sub._ended || this._closed || this._halted) return;
    if (!opened) {
      // Refused before the stream started: 404 (no such stream, or a draft), 401, 403,
      // or the network. EventSource cannot tell; a plain GET can.
      const status = await this._probeStream(sub.stream);
      if (sub._ended || this._closed || this._halted || sub._es) return;
      if (status === 404 || status === 401 || status === 403) {
        const code = status === 404 ? "stream_not_found" : status === 401 ? "invalid_token"
          : "forbidden";
        const error = new BulletinError(code, `GET /api/streams/${sub.stream}: HTTP ${status}`,
          { stream: sub.stream, status });
        this._fail(sub, error);
        return;
      }
      this._failures += 1;
      const next = this._tIndex + 1;
      if (this._failures >= this._fallbackAfter && next < this._transports.length &&
          this._transports[next] === "websocket" && !this._forbidden) {
        this._stopSse();
        this._switchTo(next);
        return;
      }
    }
    if (this._offline) {
      this._setStatus("offline");
      return;
    }
    const delay = backoffDelay(sub._esAttempt, this._backoff, this._random);
    this._attempt = sub._esAttempt;
    this._setStatus("reconnecting", { delay, reason });
    sub._esAttempt += 1;
    this._clearTimeout(sub._esTimer);
    sub._esTimer = this._setTimeout(() => {
      sub._esTimer = null;
      if (!this._offline) this._openEs(sub);
    }, delay);
  }

  /**
   * The HTTP status of GET /api/streams/{slug}, or 0 when it could not be asked.
   * @private
   * @param {string} slug
   * @returns {Promise<number>}
   */
  async _probeStream(slug) {
    if (!this._fetch) return 0;
    try {
      const res = await this._fetch(`${this._apiUrl}/api/streams/${encodeURIComponent(slug)}`,
        { headers: this._headers() });
      return typeof res.status === "number" ? res.status : 0;
    } catch {
      return 0;
    }
  }

  /** @private status "live" once every followed stream's EventSource is open */
  _sseStatus() {
    if (this.transport !== "sse" || this._closed || this._halted) return;
    for (const sub of this._subs.values()) {
      if (!sub._ended && !sub._resetting && !sub._esOpened) return;
    }
    this._attempt = 0;
    this._setStatus("live");
  }

  // --- reset: reload over HTTP, then follow from the loaded seq ---------------------------

  /** @private */
  _headers() {
    /** @type {Record<string, string>} */
    const headers = { Accept: "application/json" };
    if (this._token) headers.Authorization = `Bearer ${this._token}`;
    return headers;
  }

  /**
   * @private
   * @param {string} url
   */
  async _getJson(url) {
    if (!this._fetch) throw new BulletinError("reload_failed", "no fetch available");
    const res = await this._fetch(url, { headers: this._headers() });
    if (!res.ok) {
      /** @type {any} */
      let body = null;
      try { body = await res.json(); } catch { /* not JSON */ }
      const code = body && body.error && typeof body.error.code === "string"
        ? body.error.code : "http_error";
      const message = body && body.error && typeof body.error.message === "string"
        ? body.error.message : `GET ${url}: HTTP ${res.status}`;
      throw new BulletinError(code, message, { status: res.status, frame: body });
    }
    return res.json();
  }

  /**
   * The stream's current state over HTTP.
   * @param {string} stream
   * @returns {Promise<Snapshot>}
   */
  async loadSnapshot(stream) {
    const base = `${this._apiUrl}/api/streams/${encodeURIComponent(stream)}`;
    // The stream first: its seq is the resume point; posts read after it can only be
    // newer, and replayed events carry full states, so applying them again is harmless.
    const info = await this._getJson(base);
    const limit = this._postsLimit ? `?limit=${this._postsLimit}` : "";
    const page = await this._getJson(`${base}/posts${limit}`);
    return {
      stream: info,
      posts: Array.isArray(page && page.posts) ? page.posts : [],
      pinned: Array.isArray(info && info.pinned) ? info.pinned : [],
    };
  }

  /**
   * @private
   * @param {Subscription} sub
   */
  async _reset(sub) {
    if (sub._ended || this._closed) return;
    sub._resetting = true;
    this._clearTimeout(sub._resetTimer);
    sub._resetTimer = null;
    /** @type {Snapshot} */
    let snapshot;
    try {
      snapshot = await this.loadSnapshot(sub.stream);
      if (!snapshot.stream || !Number.isSafeInteger(snapshot.stream.seq)) {
        throw new BulletinError("reload_failed", "the stream has no seq");
      }
    } catch (err) {
      if (sub._ended || this._closed) return;
      const e = err instanceof BulletinError ? err
        : new BulletinError("reload_failed", `reload failed: ${String(err)}`, { cause: err });
      e.stream = sub.stream;
      if (e.status === 404 || e.status === 401 || e.status === 403) {
        this._fail(sub, e);
        return;
      }
      this._report(sub, e);
      const delay = backoffDelay(sub._resetAttempt, this._backoff, this._random);
      sub._resetAttempt += 1;
      sub._resetTimer = this._setTimeout(() => {
        sub._resetTimer = null;
        this._reset(sub);
      }, delay);
      return;
    }
    if (sub._ended || this._closed) return;
    sub._resetting = false;
    sub._resetAttempt = 0;
    sub.lastSeq = snapshot.stream.seq;
    this._call(sub, "onReset", snapshot);
    if (sub._ended || this._closed) return;
    this._resume(sub);
  }

  /**
   * Follow the stream again on whatever transport is current.
   * @private
   * @param {Subscription} sub
   */
  _resume(sub) {
    if (this._halted) return;
    if (this.transport === "sse" && this._transportName() === "sse") {
      if (!this._offline) this._openEs(sub);
      this._sseStatus();
    } else if (this._ws && this._wsOpened) {
      this._wsSubscribe(sub);
    } // else: the next WebSocket subscribes it on open
  }

  /**
   * End a subscription the server will keep refusing, and say why.
   * @internal
   * @param {Subscription} sub
   * @param {BulletinError} error
   */
  _fail(sub, error) {
    if (this._subs.get(sub.stream) === sub) this._subs.delete(sub.stream);
    this._endSub(sub);
    this._report(sub, error);
    this._sseStatus();
  }

  // --- unsubscribe -----------------------------------------------------------------------

  /**
   * @internal (Subscription.unsubscribe)
   * @param {Subscription} sub
   */
  _remove(sub) {
    if (sub._ended) return;
    if (this._subs.get(sub.stream) === sub) this._subs.delete(sub.stream);
    this._endSub(sub);
    const state = this._server.get(sub.stream);
    if (state === "subscribed" || state === "subscribing") {
      if (this._send({ type: "unsubscribe", stream: sub.stream })) {
        this._server.set(sub.stream, "unsubscribing");
      } else {
        this._server.delete(sub.stream);
      }
    }
    this._sseStatus();
  }

  /**
   * @private
   * @param {Subscription} sub
   */
  _endSub(sub) {
    sub._ended = true;
    this._clearTimeout(sub._esTimer);
    this._clearTimeout(sub._resetTimer);
    sub._esTimer = sub._resetTimer = null;
    this._closeEs(sub);
  }
}

/**
 * @param {any} e a MessageEvent
 * @returns {any}
 */
function parseData(e) {
  if (!e || typeof e.data !== "string") return null;
  try {
    const value = JSON.parse(e.data);
    return value && typeof value === "object" ? value : null;
  } catch {
    return null;
  }
}

export default BulletinClient;
