// @ts-check
/**
 * Bulletin live client: follow one or many streams of a Bulletin server.
 *
 * Dependency-free ES modules for browsers (pages and embeds) and React Native. It speaks
 * wire protocol v1 (docs/protocol.md): one WebSocket for every followed stream, and
 * Server-Sent Events (one EventSource per stream) when WebSocket does not work. It keeps
 * the last applied seq of each stream, resumes from it after every reconnect, drops
 * duplicates, reconnects with exponential back-off and full jitter as the close codes
 * say (server/core/closecodes.py), watches heartbeats, and reloads state over HTTP on `reset`.
 *
 * Guarantees: per stream, each event reaches `onEvent` exactly once and in seq order,
 * across reconnects and transport switches; no callback runs after `unsubscribe()` or
 * `close()`; what a callback throws is reported, never propagated into the client.
 *
 * This module is the whole public API (`BulletinClient`, `Subscription`, and re-exported
 * from the parts: the protocol vocabulary, `backoffDelay`, `BulletinError`) and the
 * connection's life: which transport, when to reconnect, the status. The parts:
 * protocol.js (wire vocabulary, errors, back-off), websocket.js and sse.js (the transports), snapshot.js
 * (HTTP reloads), page.js (page wake-ups).
 *
 * Usage and options: docs/client.md. Types: index.d.ts.
 *
 * @module @bulletin/client
 */

import { watchPage } from "./page.js";
import { BulletinError, TAG_RE, backoffDelay } from "./protocol.js";
import { SseTransport } from "./sse.js";
import { Snapshots } from "./snapshot.js";
import { WebSocketTransport } from "./websocket.js";

export { CLOSE_POLICIES, KNOWN_OPS, PROTOCOL_VERSION, closePolicy } from "./protocol.js";
export { BulletinError, backoffDelay };

/**
 * @typedef {"connecting" | "live" | "reconnecting" | "offline" | "closed"} Status
 * @typedef {"websocket" | "sse"} Transport
 * @typedef {{transport: Transport | null, attempt: number, delay: number | null,
 *            code: number | null, reason: string | null}} StatusDetail
 * @typedef {{type: "event", stream: string, seq: number, op: string, at: string,
 *            post?: any, stream_info?: any, [key: string]: any}} BulletinEvent
 * @typedef {{stream: any, posts: any[], pinned: any[]}} Snapshot
 * @typedef {import("./protocol.js").PostFilter} PostFilter
 * @typedef {{editor: number, name: string, post: number | null,
 *            state: "editing" | "viewing", since: string}} PresenceEntry
 * @typedef {{
 *   since?: number | null,
 *   filter?: PostFilter,
 *   onEvent?: (event: BulletinEvent) => void,
 *   onReset?: (snapshot: Snapshot) => void,
 *   onSubscribed?: (seq: number) => void,
 *   onError?: (error: BulletinError) => void,
 *   onPresence?: (editors: PresenceEntry[]) => void,
 *   onReaders?: (count: number) => void,
 *   onQueue?: () => void,
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
    /** @internal @type {{post: number | null, state: "editing" | "viewing"} | null} */
    this._presence = null;
  }

  /** Whether this subscription still receives events (false after unsubscribe or a fatal error). */
  get active() {
    return !this._ended;
  }

  /**
   * Editors only, over WebSocket: say what you are doing on this stream (`null`,
   * "viewing" for the stream itself; a post id, "editing" while editing it). Sent again
   * after every reconnect; `onPresence` gets everyone's. The server refuses readers.
   * @param {number | null} post
   * @param {"editing" | "viewing"} state
   */
  presence(post, state) {
    if (this._ended) return;
    this._presence = { post, state };
    this._client._websocket.presence(this);
  }

  /** Stop following the stream. No callback of this subscription runs afterwards. */
  unsubscribe() {
    this._client._remove(this);
  }
}

/**
 * A connection to a Bulletin server that follows one or many streams.
 *
 * Members marked `@internal` are shared with the transport modules (websocket.js, sse.js,
 * snapshot.js), which read and move the connection state; they are not public API.
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
    const token = options.token || undefined;

    const WebSocketImpl = options.WebSocket ?? g.WebSocket;
    const EventSourceImpl = options.EventSource ?? g.EventSource;
    const fetchFn = options.fetch ?? (typeof g.fetch === "function" ? g.fetch.bind(g) : undefined);

    const wanted = options.transports ?? ["websocket", "sse"];
    /** @internal @type {Transport[]} */
    this._transports = wanted.filter((t, i) => wanted.indexOf(t) === i && (
      (t === "websocket" && typeof WebSocketImpl === "function") ||
      (t === "sse" && typeof EventSourceImpl === "function")));
    if (this._transports.length === 0) {
      throw new TypeError(
        `BulletinClient: none of the transports ${JSON.stringify(wanted)} is available ` +
        "(pass WebSocket or EventSource)");
    }

    /** @internal */
    this._backoff = {
      initial: options.backoff?.initial ?? 500,
      max: options.backoff?.max ?? 30000,
    };
    /** @internal */
    this._stableAfter = options.stableAfter ?? 60000;
    /** @internal */
    this._fallbackAfter = Math.max(1, options.fallbackAfter ?? 2);
    const nav = g.navigator;

    const random = options.random ?? Math.random;
    const setTimeoutFn = options.setTimeout ?? g.setTimeout;
    const clearTimeoutFn = options.clearTimeout ?? g.clearTimeout;
    const now = options.now ?? Date.now;
    // Called as plain functions, never as methods of `options` (browsers throw
    // "Illegal invocation" for window.setTimeout called on another object).
    /** @internal @type {() => number} */
    this._random = () => random();
    /** @internal @type {SetTimeoutFn} */
    this._setTimeout = (fn, ms) => setTimeoutFn(fn, ms);
    /** @internal @type {ClearTimeoutFn} */
    this._clearTimeout = (id) => { if (id != null) clearTimeoutFn(id); };
    /** @internal @type {() => number} */
    this._now = () => now();

    /** @type {Status} */
    this.status = "connecting";
    /** @type {Transport | null} the transport in use (null before the first connection) */
    this.transport = null;

    /** @internal @type {Map<string, Subscription>} */
    this._subs = new Map();
    /** @private @type {{status: Set<Function>, error: Set<Function>}} */
    this._listeners = { status: new Set(), error: new Set() };
    /** @internal index in _transports of the transport to use */
    this._tIndex = 0;
    /** @internal reconnects in a row */
    this._attempt = 0;
    /** @internal the back-off window floor after a going-away close, until a connection opens */
    this._floor = 0;
    /** @internal consecutive failures to open the current transport */
    this._failures = 0;
    /** @internal the server refused this page's origin on WebSocket (4003) */
    this._forbidden = false;
    /** @internal @type {any} the reconnect timer */
    this._timer = null;
    /** @private */
    this._started = false;
    /** @internal close() was called */
    this._closed = false;
    /** @internal @type {{code: number | null, reason: string | null} | null} stopped by a "no" close */
    this._halted = null;
    /** @internal */
    this._offline = false;

    /** @internal */
    this._websocket = new WebSocketTransport(this, {
      url: urls.ws,
      WebSocket: WebSocketImpl,
      token,
      sendHeaders: options.webSocketHeaders ?? Boolean(nav && nav.product === "ReactNative"),
      heartbeatTimeout: options.heartbeatTimeout ?? 40000,
      upgradeInterval: options.upgradeInterval ?? 300000,
      goingAwayWindow: options.backoff?.goingAway ?? 2000,
    });
    /** @internal */
    this._sse = new SseTransport(this, { api: urls.api, EventSource: EventSourceImpl, token });
    /** @internal */
    this._snapshots = new Snapshots(this, {
      api: urls.api, token, fetch: fetchFn, postsLimit: options.postsLimit,
    });

    /** @private */
    this._page = watchPage(options.document ?? g.document, options.window ?? g.window, {
      wake: (why) => this._wake(why),
      offline: () => this._goOffline(),
    });
    if (this._page.startsOffline) this._offline = true;
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
    const filter = options.filter;
    if (filter != null && (typeof filter !== "object" ||
        (filter.tag != null && !(typeof filter.tag === "string" && TAG_RE.test(filter.tag))) ||
        (filter.pinned != null && typeof filter.pinned !== "boolean"))) {
      throw new TypeError("BulletinClient: filter is {tag?: a tag, pinned?: boolean}");
    }
    const sub = new Subscription(this, stream, options);
    this._subs.set(stream, sub);
    if (!this._started) {
      this._start();
    } else if (this._transportName() === "websocket") {
      if (this._websocket.isOpen()) this._websocket.subscribe(sub);
    } else if (this.transport === "sse" && !this._offline && !this._halted) {
      this._sse.open(sub);
    }
    return sub;
  }

  /**
   * Listen to "status" (status, detail) or "error" (error) events.
   * @overload
   * @param {"status"} name
   * @param {(status: Status, detail: StatusDetail) => void} listener
   * @returns {() => void} call to stop listening
   */
  /**
   * @overload
   * @param {"error"} name
   * @param {(error: BulletinError) => void} listener
   * @returns {() => void} call to stop listening
   */
  /**
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

  /**
   * The stream's current state over HTTP (its posts: those of `filter`, if given).
   * @param {string} stream
   * @param {PostFilter} [filter]
   * @returns {Promise<Snapshot>}
   */
  loadSnapshot(stream, filter) {
    return this._snapshots.load(stream, filter);
  }

  /** Close everything for good: status "closed", no reconnect, no more callbacks. */
  close() {
    if (this._closed) return;
    this._closed = true;
    this._clearTimeout(this._timer);
    this._timer = null;
    this._websocket.close();
    for (const sub of this._subs.values()) this._endSub(sub);
    this._subs.clear();
    this._page.stop();
    this._setStatus("closed", { code: 1000, reason: "client closed" });
  }

  // --- status and callbacks --------------------------------------------------------------

  /**
   * @internal
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
   * @internal
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
   * @internal
   * @param {Subscription} sub
   * @param {"onEvent" | "onReset" | "onSubscribed" | "onError" | "onPresence" | "onReaders" | "onQueue"} name
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
   * @internal
   * @param {Subscription} sub
   * @param {BulletinError} error
   */
  _report(sub, error) {
    const onError = /** @type {any} */ (sub)._options.onError;
    if (typeof onError === "function") this._call(sub, "onError", error);
    else this._emitError(error);
  }

  // --- connection lifecycle --------------------------------------------------------------

  /** @internal @returns {Transport} */
  _transportName() {
    // _tIndex only ever holds an index of _transports, which is never empty
    return /** @type {Transport} */ (this._transports[this._tIndex]);
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

  /** @internal */
  _connect() {
    this._clearTimeout(this._timer);
    this._timer = null;
    if (this._closed || this._halted) return;
    if (this._transportName() === "websocket") {
      this._websocket.open(false);
    } else {
      this._sse.start();
    }
  }

  /**
   * Schedule a reconnect of the current transport.
   * @internal
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
   * @internal
   * @param {number | null} code
   * @param {string | null} reason
   */
  _halt(code, reason) {
    this._halted = { code, reason };
    this._clearTimeout(this._timer);
    this._timer = null;
    this._websocket.cancelProbe();
    this._sse.stop();
    this._setStatus("closed", { code, reason });
  }

  /**
   * Move to another transport and connect with it at once.
   * @internal
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
      if (this._websocket.wake()) return;
      this._setStatus("reconnecting", { delay: 0 });
      this._connect();
      return;
    }
    this._sse.wake();
  }

  /** @private */
  _goOffline() {
    if (this._closed || this._halted) return;
    this._offline = true;
    this._clearTimeout(this._timer);
    this._timer = null;
    this._sse.cancelRetries();
    if (this._started) this._setStatus("offline");
  }

  // --- delivery: each event once, in order -----------------------------------------------

  /**
   * Apply an event once, in order.
   * @internal
   * @param {Subscription} sub
   * @param {any} frame
   */
  _apply(sub, frame) {
    if (sub.lastSeq != null && frame.seq <= sub.lastSeq) return; // duplicate
    sub.lastSeq = frame.seq;
    this._call(sub, "onEvent", frame);
  }

  /**
   * @internal
   * @param {Subscription} sub
   * @param {number} seq
   */
  _subscribed(sub, seq) {
    if (sub.lastSeq == null) sub.lastSeq = seq;
    this._call(sub, "onSubscribed", seq);
  }

  /**
   * Follow the stream again on whatever transport is current (after a reset reload).
   * @internal
   * @param {Subscription} sub
   */
  _resume(sub) {
    if (this._halted) return;
    if (this.transport === "sse" && this._transportName() === "sse") {
      if (!this._offline) this._sse.open(sub);
      this._sse.updateStatus();
    } else if (this._websocket.isOpen()) {
      this._websocket.subscribe(sub);
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
    this._sse.updateStatus();
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
    this._websocket.unsubscribe(sub);
    this._sse.updateStatus();
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
    this._sse.close(sub);
  }
}

export default BulletinClient;
