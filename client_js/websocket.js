// @ts-check
/**
 * The WebSocket transport of a `BulletinClient`: one socket for every followed stream.
 *
 * Guarantees:
 * - At most one current socket; a socket that was replaced or dropped is detached, so its
 *   late events are ignored.
 * - Per stream, the server side is tracked ("subscribing", "subscribed", "unsubscribing"):
 *   a stream is never subscribed twice on one socket, and events that arrive while it is
 *   being unsubscribed are dropped. An event past a gap is never applied: the stream is
 *   started over from its last applied seq.
 * - A socket silent for longer than the heartbeat timeout is declared dead.
 * - Every close is decided by its close code (protocol.js): resume at once, back off, fall
 *   back to SSE, or stop.
 * - While the client is on SSE, a background probe socket tries WebSocket again now and
 *   then; when it opens, the client leaves SSE for it.
 *
 * The connection state both transports share (attempts in a row, failures, which
 * transport, the status) lives on the `BulletinClient`; this module reads and updates it.
 *
 * @module @bulletin/client/websocket
 */

import {
  BulletinError, FATAL_STREAM_ERRORS, SHUTDOWN_CODES, backoffDelay, closePolicy,
  parseFrame, presenceFrame, subscribeFrame, unsubscribeFrame,
} from "./protocol.js";

/**
 * @typedef {import("./client.js").BulletinClient} BulletinClient
 * @typedef {import("./client.js").Subscription} Subscription
 * @typedef {{opened: boolean, gotFrame: boolean, openedAt: number}} CloseInfo
 * @typedef {{
 *   url: string,
 *   WebSocket: any,
 *   token: string | undefined,
 *   sendHeaders: boolean,
 *   heartbeatTimeout: number,
 *   upgradeInterval: number,
 *   goingAwayWindow: number,
 * }} WebSocketOptions
 */

/** WebSocket.OPEN, as a number: a constructor passed in may not define the constants. */
const WS_OPEN = 1;

/**
 * @param {any} ws
 */
function detach(ws) {
  ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
}

/**
 * One socket for every stream of a client.
 */
export class WebSocketTransport {
  /**
   * @param {BulletinClient} client
   * @param {WebSocketOptions} options
   */
  constructor(client, options) {
    /** @private */
    this._client = client;
    /** @private */
    this._url = options.url;
    /** @private */
    this._WebSocket = options.WebSocket;
    /** @private */
    this._token = options.token;
    /** @private send the token as a header to the constructor (React Native) */
    this._sendHeaders = options.sendHeaders;
    /** @private */
    this._heartbeatTimeout = options.heartbeatTimeout;
    /** @private */
    this._upgradeInterval = options.upgradeInterval;
    /** @private */
    this._goingAwayWindow = options.goingAwayWindow;

    /** @private WebSocket has delivered frames at least once on this client */
    this._worked = false;
    /** @private @type {any} */
    this._probeTimer = null;
    /** @private @type {any} */
    this._probe = null;
    /** @private @type {any} */
    this._ws = null;
    /** @private */
    this._opened = false;
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
  }

  /** Whether the current socket is open (frames can be sent). */
  isOpen() {
    return Boolean(this._ws && this._opened);
  }

  // --- the socket ------------------------------------------------------------------------

  /**
   * Open a socket: the current one, or a probe (a background attempt to leave SSE).
   * @param {boolean} probe
   */
  open(probe) {
    const WS = this._WebSocket;
    /** @type {any} */
    let ws;
    try {
      if (this._token && this._sendHeaders) {
        // React Native: new WebSocket(url, protocols, {headers})
        ws = new WS(this._url, [], { headers: { Authorization: `Bearer ${this._token}` } });
      } else {
        ws = new WS(this._url);
      }
    } catch (err) {
      if (probe) {
        this.scheduleProbe();
      } else {
        this._ws = null;
        this._afterClose(1006, `WebSocket failed: ${String(err)}`,
          { opened: false, gotFrame: false, openedAt: 0 });
      }
      return;
    }
    if (probe) {
      this._probe = ws;
    } else {
      this._ws = ws;
      this._opened = false;
      this._gotFrame = false;
      this._server.clear();
    }
    ws.onopen = () => this._onOpen(ws);
    /** @param {any} ev */
    ws.onmessage = (ev) => this._onMessage(ws, ev);
    ws.onerror = () => this._onClose(ws, 1006, "WebSocket error");
    /** @param {any} ev */
    ws.onclose = (ev) => this._onClose(ws, ev && typeof ev.code === "number" ? ev.code : 1006,
      ev && ev.reason ? String(ev.reason) : null);
  }

  /**
   * Forget the current socket (closing it if needed); its late events are ignored.
   */
  drop() {
    const ws = this._ws;
    this._client._clearTimeout(this._watchdog);
    this._watchdog = null;
    this._server.clear();
    if (!ws) return;
    this._ws = null;
    this._opened = false;
    detach(ws);
    try {
      ws.close(1000);
    } catch { /* already closing */ }
  }

  /** For client.close(): stop probing, close the probe and the current socket. */
  close() {
    this.cancelProbe();
    if (this._probe) {
      const probe = this._probe;
      this._probe = null;
      detach(probe);
      try { probe.close(1000, "client closed"); } catch { /* already closed */ }
    }
    this.drop();
  }

  /**
   * Page visible, network back, or reconnectNow() while on WebSocket: replace a socket
   * silent past the heartbeat timeout.
   * @returns {boolean} false when there is no socket at all (the client connects one)
   */
  wake() {
    const c = this._client;
    if (!this._ws) return false;
    if (this._opened && c._now() - this._lastFrameAt > this._heartbeatTimeout) {
      this.drop();
      c._setStatus("reconnecting", { delay: 0, reason: "heartbeat timeout" });
      c._connect();
    } else if (this._opened) {
      c._setStatus("live");
    }
    return true; // connecting, or alive
  }

  /**
   * @private
   * @param {any} ws
   */
  _onOpen(ws) {
    const c = this._client;
    if (c._closed) return;
    if (ws === this._probe) {
      // WebSocket works again: leave SSE. Events both carried are dropped by seq.
      this._probe = null;
      c._sse.stop();
      c._tIndex = c._transports.indexOf("websocket");
      c._failures = c._fallbackAfter - 1; // one more failure and we go back to SSE
      this._ws = ws;
      this._gotFrame = false;
      this._server.clear();
    } else if (ws !== this._ws) {
      return;
    }
    this._opened = true;
    this._openedAt = this._lastFrameAt = c._now();
    c._floor = 0;
    c._offline = false;
    c.transport = "websocket";
    c._setStatus("live");
    this._armWatchdog(ws, this._heartbeatTimeout);
    for (const sub of c._subs.values()) this.subscribe(sub);
  }

  /**
   * @private
   * @param {any} ws
   * @param {number} ms
   */
  _armWatchdog(ws, ms) {
    const c = this._client;
    c._clearTimeout(this._watchdog);
    this._watchdog = c._setTimeout(() => {
      this._watchdog = null;
      if (ws !== this._ws || c._closed) return;
      const silent = c._now() - this._lastFrameAt;
      if (silent >= this._heartbeatTimeout) {
        const info = { opened: true, gotFrame: this._gotFrame, openedAt: this._openedAt };
        this.drop();
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
  _onClose(ws, code, reason) {
    if (ws === this._probe) {
      this._probe = null;
      detach(ws);
      try { ws.close(); } catch { /* closed */ }
      this.scheduleProbe();
      return;
    }
    if (ws !== this._ws) return;
    const info = { opened: this._opened, gotFrame: this._gotFrame, openedAt: this._openedAt };
    this._client._clearTimeout(this._watchdog);
    this._watchdog = null;
    this._server.clear();
    this._ws = null;
    this._opened = false;
    detach(ws);
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
   * @param {CloseInfo} info
   */
  _afterClose(code, reason, info) {
    const c = this._client;
    if (c._closed || c._halted) return;
    if (info.opened && c._now() - info.openedAt >= c._stableAfter) c._attempt = 0;
    // A 1000 we did not ask for (a proxy, say) is unexpected: back off and come back.
    const policy = code === 1000 ? "backoff" : closePolicy(code);
    if (policy === "no") {
      if (code === 4003 && c._transports.includes("sse")) {
        c._forbidden = true;
        c._switchTo(c._transports.indexOf("sse"));
        return;
      }
      c._halt(code, reason);
      return;
    }
    if (SHUTDOWN_CODES.has(code)) c._floor = this._goingAwayWindow;
    const failed = !info.opened ||
      (!info.gotFrame && policy === "backoff" && !SHUTDOWN_CODES.has(code));
    c._failures = failed ? c._failures + 1 : 0;
    // Once WebSocket has worked on this network, failures are outages, not a blocking
    // proxy: keep backing off on WebSocket (SSE would not do better).
    if (failed && !this._worked && c._failures >= c._fallbackAfter &&
        c._tIndex < c._transports.length - 1) {
      c._switchTo(c._tIndex + 1);
      return;
    }
    c._schedule(policy, code, reason);
  }

  // --- the probe: back from SSE to WebSocket ---------------------------------------------

  /** While on SSE (and WebSocket is preferred), try WebSocket again after a while. */
  scheduleProbe() {
    const c = this._client;
    this.cancelProbe();
    const wsIndex = c._transports.indexOf("websocket");
    if (wsIndex < 0 || wsIndex > c._tIndex || c._forbidden || c._closed || c._halted) {
      return;
    }
    if (c._transportName() === "websocket") return;
    this._probeTimer = c._setTimeout(() => {
      this._probeTimer = null;
      if (c._closed || c._halted || c.transport !== "sse") return;
      if (c._offline) {
        this.scheduleProbe();
        return;
      }
      this.open(true);
    }, this._upgradeInterval);
  }

  /** Stop the probe timer (a probe socket already connecting carries on). */
  cancelProbe() {
    this._client._clearTimeout(this._probeTimer);
    this._probeTimer = null;
  }

  // --- frames ----------------------------------------------------------------------------

  /**
   * @private
   * @param {any} ws
   * @param {any} ev
   */
  _onMessage(ws, ev) {
    const c = this._client;
    if (ws !== this._ws || c._closed) return;
    this._gotFrame = true;
    this._worked = true;
    this._lastFrameAt = c._now();
    if (c._offline || c.status !== "live") {
      c._offline = false;
      c._setStatus("live");
    }
    // binary frames are not part of protocol v1; nor is text that is not a JSON object
    const frame = parseFrame(ev ? ev.data : undefined);
    if (!frame) return;
    switch (frame.type) {
      case "event": this._event(frame); break;
      case "subscribed": this._subscribed(frame); break;
      case "unsubscribed": this._unsubscribed(frame.stream); break;
      case "reset": this._reset(frame); break;
      case "error": this._error(frame); break;
      case "presence": case "readers": case "queue": this._newsroom(frame); break;
      default: break; // heartbeat, and frame types this version does not know
    }
  }

  /**
   * @private
   * @param {any} frame
   */
  _send(frame) {
    const ws = this._ws;
    if (!ws || !this._opened || ws.readyState !== WS_OPEN) return false;
    try {
      ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false; // the close event follows
    }
  }

  /**
   * Subscribe a stream on the open socket, unless it is there already (or on its way).
   * @param {Subscription} sub
   */
  subscribe(sub) {
    if (sub._ended || sub._resetting) return;
    if (this._server.has(sub.stream)) return; // subscribed, subscribing, or unsubscribing first
    if (this._send(subscribeFrame(sub.stream, sub.lastSeq, sub._options.filter))) {
      this._server.set(sub.stream, "subscribing");
      this.presence(sub);
    }
  }

  /**
   * Send what the editor said with `presence()`, once the stream is asked for here (a
   * reconnect sends it again after its subscribe).
   * @param {Subscription} sub
   */
  presence(sub) {
    const state = this._server.get(sub.stream);
    if (sub._presence && (state === "subscribing" || state === "subscribed")) {
      this._send(presenceFrame(sub.stream, sub._presence.post, sub._presence.state));
    }
  }

  /**
   * Editors' frames: who is on the stream, how many read it, that its posts that wait
   * changed.
   * @private
   * @param {any} frame
   */
  _newsroom(frame) {
    const c = this._client;
    const sub = typeof frame.stream === "string" ? c._subs.get(frame.stream) : undefined;
    if (!sub || sub._ended) return;
    if (frame.type === "presence" && Array.isArray(frame.editors)) {
      c._call(sub, "onPresence", frame.editors);
    } else if (frame.type === "readers" && Number.isSafeInteger(frame.count)) {
      c._call(sub, "onReaders", frame.count);
    } else if (frame.type === "queue") {
      c._call(sub, "onQueue", undefined);
    }
  }

  /**
   * A subscription ended: tell the server, if it is subscribed (or subscribing) there.
   * @param {Subscription} sub
   */
  unsubscribe(sub) {
    const state = this._server.get(sub.stream);
    if (state === "subscribed" || state === "subscribing") {
      if (this._send(unsubscribeFrame(sub.stream))) {
        this._server.set(sub.stream, "unsubscribing");
      } else {
        this._server.delete(sub.stream);
      }
    }
  }

  /**
   * Ask the server to start this stream over from our lastSeq.
   * @private
   * @param {Subscription} sub
   */
  _resync(sub) {
    if (this._server.get(sub.stream) === "unsubscribing") return;
    if (this._send(unsubscribeFrame(sub.stream))) {
      this._server.set(sub.stream, "unsubscribing");
    }
  }

  /**
   * @private
   * @param {any} frame
   */
  _event(frame) {
    const c = this._client;
    const sub = typeof frame.stream === "string" ? c._subs.get(frame.stream) : undefined;
    if (!sub || sub._ended || sub._resetting) return;
    if (this._server.get(sub.stream) === "unsubscribing") return;
    if (!Number.isSafeInteger(frame.seq)) return;
    const last = sub.lastSeq;
    if (last != null && frame.seq > last + 1) {
      // Never expected on WebSocket; do not apply out of order: start over from lastSeq.
      this._resync(sub);
      return;
    }
    c._apply(sub, frame);
  }

  /**
   * @private
   * @param {any} frame
   */
  _subscribed(frame) {
    const c = this._client;
    const slug = frame.stream;
    if (typeof slug !== "string" || !Number.isSafeInteger(frame.seq)) return;
    const state = this._server.get(slug);
    if (state === "unsubscribing") return; // its `unsubscribed` follows
    const sub = c._subs.get(slug);
    if (!sub || sub._ended) {
      this._server.delete(slug);
      if (this._send(unsubscribeFrame(slug))) this._server.set(slug, "unsubscribing");
      return;
    }
    this._server.set(slug, "subscribed");
    sub._resetAttempt = 0;
    c._subscribed(sub, frame.seq);
  }

  /**
   * @private
   * @param {unknown} slug
   */
  _unsubscribed(slug) {
    if (typeof slug !== "string") return;
    this._server.delete(slug);
    const sub = this._client._subs.get(slug);
    if (sub && !sub._ended) this.subscribe(sub); // a resync, or subscribed again meanwhile
  }

  /**
   * @private
   * @param {any} frame
   */
  _reset(frame) {
    const c = this._client;
    const slug = frame.stream;
    if (typeof slug !== "string") return;
    this._server.delete(slug); // a reset means we are not subscribed
    const sub = c._subs.get(slug);
    if (sub && !sub._ended) c._snapshots.reset(sub);
  }

  /**
   * @private
   * @param {any} frame
   */
  _error(frame) {
    const c = this._client;
    const slug = typeof frame.stream === "string" ? frame.stream : null;
    const code = typeof frame.code === "string" ? frame.code : "error";
    const message = typeof frame.message === "string" ? frame.message : code;
    if (slug && code === "not_subscribed") {
      this._unsubscribed(slug);
      return;
    }
    if (slug && code === "already_subscribed") {
      this._server.set(slug, "subscribed");
      return;
    }
    const error = new BulletinError(code, message, { stream: slug, frame });
    const sub = slug ? c._subs.get(slug) : undefined;
    if (sub && !sub._ended && code === "unavailable") {
      // The server could not read the stream just now (its database is busy or away):
      // we are not subscribed; ask again after a growing, jittered delay.
      this._server.delete(sub.stream);
      c._report(sub, error);
      c._clearTimeout(sub._resetTimer);
      const delay = backoffDelay(sub._resetAttempt, c._backoff, c._random);
      sub._resetAttempt += 1;
      sub._resetTimer = c._setTimeout(() => {
        sub._resetTimer = null;
        this.subscribe(sub);
      }, delay);
      return;
    }
    if (sub && !sub._ended) {
      if (FATAL_STREAM_ERRORS.has(code)) {
        this._server.delete(sub.stream);
        c._fail(sub, error);
      } else {
        c._report(sub, error);
      }
      return;
    }
    c._emitError(error);
  }
}
