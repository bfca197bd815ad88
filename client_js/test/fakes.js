// Fakes for testing client.js without a network: a WebSocket and an EventSource driven
// by the test, a fetch answering from a table, and a clock whose timers run only when
// the test advances it.

import { BulletinClient } from "../client.js";

/** A manual clock: now(), setTimeout() and clearTimeout() that run only on advance(). */
export class FakeClock {
  constructor(start = 1_000_000) {
    this.time = start;
    this.timers = new Map();
    this.nextId = 1;
    this.now = () => this.time;
    this.setTimeout = (fn, ms) => {
      const id = this.nextId++;
      this.timers.set(id, { at: this.time + Math.max(0, Number(ms) || 0), fn, ms, id });
      return id;
    };
    this.clearTimeout = (id) => {
      this.timers.delete(id);
    };
  }

  /** The pending timers, soonest first. */
  pending() {
    return [...this.timers.values()].sort((a, b) => a.at - b.at || a.id - b.id);
  }

  /** Run every timer due within `ms`, in order, letting promises settle in between. */
  async advance(ms) {
    const end = this.time + ms;
    for (;;) {
      await flush();
      const next = this.pending()[0];
      if (!next || next.at > end) break;
      this.timers.delete(next.id);
      this.time = next.at;
      next.fn();
    }
    this.time = end;
    await flush();
  }

  /** Move the clock without running timers (a throttled background tab). */
  jump(ms) {
    this.time += ms;
  }
}

/** Let pending promise callbacks (fetch, async handlers) run. */
export async function flush() {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** A random() that returns the given values in turn (the last one repeats). */
export function fixedRandom(...values) {
  let i = 0;
  const fn = () => values[Math.min(i++, values.length - 1)];
  fn.calls = () => i;
  return fn;
}

/** A fake WebSocket class; each test gets its own subclass with its own instance list. */
export function makeWebSocket() {
  const instances = [];
  class FakeWebSocket {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSING = 2;
    static CLOSED = 3;
    static instances = instances;

    constructor(url, protocols, options) {
      this.url = url;
      this.protocols = protocols;
      this.options = options;
      this.argCount = arguments.length;
      this.readyState = 0;
      this.sent = [];
      this.closedBy = null; // {code, reason} when the client called close()
      this.onopen = this.onmessage = this.onerror = this.onclose = null;
      instances.push(this);
    }

    send(data) {
      if (this.readyState !== 1) throw new Error("InvalidStateError: not open");
      this.sent.push(data);
    }

    close(code, reason) {
      this.closedBy = { code, reason };
      this.readyState = 3;
    }

    // --- driven by the test (the "server") ---

    /** Frames the client sent, parsed. */
    frames() {
      return this.sent.map((s) => JSON.parse(s));
    }

    open() {
      this.readyState = 1;
      this.onopen?.({ type: "open" });
    }

    receive(frame) {
      const data = typeof frame === "string" ? frame : JSON.stringify(frame);
      this.onmessage?.({ type: "message", data });
    }

    /** The server closes the connection with a close frame. */
    serverClose(code, reason = "") {
      this.readyState = 3;
      this.onclose?.({ type: "close", code, reason, wasClean: true });
    }

    /** The connection fails (refused, dropped): error then close 1006. */
    fail() {
      this.readyState = 3;
      this.onerror?.({ type: "error" });
      this.onclose?.({ type: "close", code: 1006, reason: "", wasClean: false });
    }

    get live() {
      return this.readyState === 1 && this.closedBy === null;
    }
  }
  return FakeWebSocket;
}

/** A fake EventSource class with its own instance list. */
export function makeEventSource() {
  const instances = [];
  class FakeEventSource {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSED = 2;
    static instances = instances;

    constructor(url, init) {
      this.url = url;
      this.init = init;
      this.readyState = 0;
      this.closed = false;
      this.listeners = new Map();
      instances.push(this);
    }

    addEventListener(type, fn) {
      if (!this.listeners.has(type)) this.listeners.set(type, []);
      this.listeners.get(type).push(fn);
    }

    removeEventListener(type, fn) {
      const list = this.listeners.get(type) || [];
      const i = list.indexOf(fn);
      if (i >= 0) list.splice(i, 1);
    }

    close() {
      this.closed = true;
      this.readyState = 2;
    }

    dispatch(type, event) {
      for (const fn of [...(this.listeners.get(type) || [])]) fn(event);
    }

    // --- driven by the test ---

    get since() {
      const m = /[?&]since=(\d+)/.exec(this.url);
      return m ? Number(m[1]) : null;
    }

    open() {
      this.readyState = 1;
      this.dispatch("open", { type: "open" });
    }

    /** A named record: event: name, data: JSON, id: id. */
    emit(name, data, id = "") {
      this.dispatch(name, { type: name, data: JSON.stringify(data), lastEventId: String(id) });
    }

    /** An SSE event record for an event object (event: op, id: seq). */
    event(ev) {
      this.emit(ev.op, ev, ev.seq);
    }

    /** The connection failed or ended; a browser would then retry by itself. */
    fail() {
      this.readyState = 0;
      this.dispatch("error", { type: "error" });
    }
  }
  return FakeEventSource;
}

/** A fake fetch answering from a table of url -> {status, body} (or a function). */
export function makeFetch(routes = {}) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, init });
    let answer = routes[url];
    if (typeof answer === "function") answer = await answer(url, init);
    if (answer instanceof Error) throw answer;
    if (!answer) answer = { status: 404, body: { error: { code: "not_found", message: "no" } } };
    const status = answer.status ?? 200;
    return {
      ok: status >= 200 && status < 300,
      status,
      json: async () => answer.body,
    };
  };
  fetch.calls = calls;
  fetch.routes = routes;
  return fetch;
}

/** A minimal EventTarget standing in for document or window. */
export class FakeTarget {
  constructor(props = {}) {
    Object.assign(this, props);
    this.listeners = new Map();
  }

  addEventListener(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
  }

  removeEventListener(type, fn) {
    this.listeners.get(type)?.delete(fn);
  }

  dispatch(type, event = { type }) {
    for (const fn of [...(this.listeners.get(type) || [])]) fn(event);
  }

  count(type) {
    return this.listeners.get(type)?.size ?? 0;
  }
}

export const BASE = "https://live.example.com";

/** An event frame as the server sends it. */
export function ev(stream, seq, op = "post.created", extra = {}) {
  return {
    type: "event", stream, seq, op, at: "2026-11-25T10:00:00.000Z",
    post: { id: seq, stream, body: `post ${seq}`, pinned: false, deleted: false },
    ...extra,
  };
}

/**
 * A client wired to fakes. Returns the client, the fakes, and helpers:
 * `ws()` the newest socket, `statuses` every status change seen.
 */
export function setup(overrides = {}) {
  const clock = new FakeClock();
  const WebSocket = makeWebSocket();
  const EventSource = makeEventSource();
  const fetch = makeFetch(overrides.routes);
  const document = new FakeTarget({ visibilityState: "visible" });
  const window = new FakeTarget({ navigator: { onLine: true } });
  const options = {
    url: BASE,
    WebSocket,
    EventSource,
    fetch,
    random: () => 0.5,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    now: clock.now,
    document,
    window,
    ...overrides.options,
  };
  const client = new BulletinClient(options);
  const statuses = [];
  client.on("status", (status, detail) => statuses.push({ status, ...detail }));
  const ws = () => WebSocket.instances[WebSocket.instances.length - 1];
  const es = (slug) => {
    const list = EventSource.instances.filter((e) => e.url.includes(`/streams/${slug}/`));
    return list[list.length - 1];
  };
  return { client, clock, WebSocket, EventSource, fetch, document, window, statuses, ws, es };
}

/** A subscription that records what reached its handlers. */
export function follow(client, slug, options = {}) {
  const got = { events: [], resets: [], subscribed: [], errors: [] };
  const sub = client.subscribe(slug, {
    onEvent: (e) => got.events.push(e),
    onReset: (s) => got.resets.push(s),
    onSubscribed: (seq) => got.subscribed.push(seq),
    onError: (err) => got.errors.push(err),
    ...options,
  });
  got.seqs = () => got.events.map((e) => e.seq);
  return { sub, got };
}
