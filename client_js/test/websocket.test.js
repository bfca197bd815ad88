import { test } from "node:test";
import assert from "node:assert/strict";

import { BulletinClient, BulletinError } from "../client.js";
import { BASE, FakeTarget, ev, follow, makeWebSocket, setup } from "./fakes.js";

test("derives ws(s)://host/ws and the /api base from the http(s) url", () => {
  const { client, ws } = setup({ options: { url: "https://live.example.com/" } });
  client.subscribe("a");
  assert.equal(ws().url, "wss://live.example.com/ws");
  const plain = setup({ options: { url: "http://127.0.0.1:8000/bulletin" } });
  plain.client.subscribe("a");
  assert.equal(plain.ws().url, "ws://127.0.0.1:8000/bulletin/ws");
});

test("defaults url to globalThis.location.origin and refuses a missing or non-http url", () => {
  const WebSocket = makeWebSocket();
  assert.throws(() => new BulletinClient({ WebSocket }), TypeError);
  assert.throws(() => new BulletinClient({ url: "ftp://x", WebSocket }), TypeError);
  globalThis.location = { origin: "https://news.example" };
  try {
    const client = new BulletinClient({ WebSocket, setTimeout, clearTimeout });
    client.subscribe("a");
    assert.equal(WebSocket.instances[0].url, "wss://news.example/ws");
    client.close();
  } finally {
    delete globalThis.location;
  }
});

test("throws when no transport is available (no WebSocket, no EventSource)", () => {
  assert.throws(() => new BulletinClient({ url: BASE, WebSocket: null, EventSource: null,
    transports: ["websocket", "sse"] }), /none of the transports/);
});

test("connects lazily on the first subscribe and sends subscribe with since once open", () => {
  const { client, WebSocket, ws } = setup();
  assert.equal(WebSocket.instances.length, 0);
  assert.equal(client.status, "connecting");
  client.subscribe("election-night", { since: 42 });
  assert.equal(WebSocket.instances.length, 1);
  assert.deepEqual(ws().sent, []);
  ws().open();
  assert.deepEqual(ws().frames(), [{ type: "subscribe", stream: "election-night", since: 42 }]);
  assert.equal(client.status, "live");
  assert.equal(client.transport, "websocket");
});

test("since omitted subscribes with since null and starts lastSeq at the subscribed seq", () => {
  const { client, ws } = setup();
  const { sub, got } = follow(client, "a");
  ws().open();
  assert.deepEqual(ws().frames(), [{ type: "subscribe", stream: "a", since: null }]);
  assert.equal(sub.lastSeq, null);
  ws().receive({ type: "subscribed", stream: "a", seq: 7 });
  assert.equal(sub.lastSeq, 7);
  assert.deepEqual(got.subscribed, [7]);
  ws().receive(ev("a", 8));
  assert.deepEqual(got.seqs(), [8]);
  assert.equal(sub.lastSeq, 8);
});

test("delivers each event object unchanged, in seq order, and advances lastSeq", () => {
  const { client, ws } = setup();
  const { sub, got } = follow(client, "a", { since: 2 });
  ws().open();
  ws().receive({ type: "subscribed", stream: "a", seq: 5 });
  for (const seq of [3, 4, 5]) ws().receive(ev("a", seq));
  assert.deepEqual(got.seqs(), [3, 4, 5]);
  assert.deepEqual(got.events[0], ev("a", 3));
  assert.equal(sub.lastSeq, 5);
  assert.deepEqual(got.subscribed, [5]);
});

test("drops duplicate and old events (seq <= lastSeq)", () => {
  const { client, ws } = setup();
  const { sub, got } = follow(client, "a", { since: 10 });
  ws().open();
  ws().receive({ type: "subscribed", stream: "a", seq: 12 });
  ws().receive(ev("a", 9));
  ws().receive(ev("a", 10));
  ws().receive(ev("a", 11));
  ws().receive(ev("a", 11));
  ws().receive(ev("a", 12));
  ws().receive(ev("a", 10));
  assert.deepEqual(got.seqs(), [11, 12]);
  assert.equal(sub.lastSeq, 12);
});

test("follows many streams on one WebSocket, each in its own seq order", () => {
  const { client, WebSocket, ws } = setup();
  const a = follow(client, "a", { since: 1 });
  const b = follow(client, "b", { since: 5 });
  ws().open();
  const c = follow(client, "c"); // subscribed while open: sent at once
  assert.equal(WebSocket.instances.length, 1);
  assert.deepEqual(ws().frames(), [
    { type: "subscribe", stream: "a", since: 1 },
    { type: "subscribe", stream: "b", since: 5 },
    { type: "subscribe", stream: "c", since: null },
  ]);
  ws().receive({ type: "subscribed", stream: "a", seq: 3 });
  ws().receive({ type: "subscribed", stream: "b", seq: 6 });
  ws().receive({ type: "subscribed", stream: "c", seq: 0 });
  ws().receive(ev("a", 2));
  ws().receive(ev("b", 6));
  ws().receive(ev("a", 3));
  ws().receive(ev("c", 1));
  ws().receive(ev("zzz", 1)); // a stream we do not follow
  assert.deepEqual(a.got.seqs(), [2, 3]);
  assert.deepEqual(b.got.seqs(), [6]);
  assert.deepEqual(c.got.seqs(), [1]);
  assert.ok(a.got.events.every((e) => e.stream === "a"));
});

test("refuses to subscribe to the same stream twice on one client", () => {
  const { client } = setup();
  client.subscribe("a");
  assert.throws(() => client.subscribe("a"), /already subscribed/);
  assert.throws(() => client.subscribe("b", { since: -1 }), TypeError);
  assert.throws(() => client.subscribe("b", { since: 1.5 }), TypeError);
  assert.throws(() => client.subscribe(""), TypeError);
});

test("a seq gap is not applied: unsubscribe, then subscribe again from lastSeq", () => {
  const { client, ws } = setup();
  const { sub, got } = follow(client, "a", { since: 4 });
  ws().open();
  ws().receive({ type: "subscribed", stream: "a", seq: 5 });
  ws().receive(ev("a", 5));
  ws().receive(ev("a", 7)); // 6 is missing
  ws().receive(ev("a", 8)); // still before the resync: ignored
  assert.deepEqual(got.seqs(), [5]);
  assert.equal(sub.lastSeq, 5);
  assert.deepEqual(ws().frames().slice(1), [{ type: "unsubscribe", stream: "a" }]);
  ws().receive({ type: "unsubscribed", stream: "a" });
  assert.deepEqual(ws().frames().slice(2), [{ type: "subscribe", stream: "a", since: 5 }]);
  ws().receive({ type: "subscribed", stream: "a", seq: 8 });
  for (const seq of [6, 7, 8]) ws().receive(ev("a", seq));
  assert.deepEqual(got.seqs(), [5, 6, 7, 8]);
  assert.deepEqual(got.subscribed, [5, 8]);
});

test("unsubscribe sends unsubscribe, stops callbacks, and a re-subscribe waits for unsubscribed", () => {
  const { client, ws } = setup();
  const a = follow(client, "a", { since: 0 });
  ws().open();
  ws().receive({ type: "subscribed", stream: "a", seq: 1 });
  ws().receive(ev("a", 1));
  a.sub.unsubscribe();
  assert.equal(a.sub.active, false);
  assert.deepEqual(ws().frames().at(-1), { type: "unsubscribe", stream: "a" });
  ws().receive(ev("a", 2)); // in flight before the server saw it
  assert.deepEqual(a.got.seqs(), [1]);
  a.sub.unsubscribe(); // idempotent
  assert.equal(ws().frames().length, 2);

  const again = follow(client, "a", { since: 2 });
  assert.equal(ws().frames().length, 2, "waits for the server to confirm the unsubscribe");
  ws().receive({ type: "unsubscribed", stream: "a" });
  assert.deepEqual(ws().frames().at(-1), { type: "subscribe", stream: "a", since: 2 });
  ws().receive({ type: "subscribed", stream: "a", seq: 3 });
  ws().receive(ev("a", 3));
  assert.deepEqual(again.got.seqs(), [3]);
});

test("unsubscribing before the socket opens sends nothing for that stream", () => {
  const { client, ws } = setup();
  const a = follow(client, "a");
  follow(client, "b");
  a.sub.unsubscribe();
  ws().open();
  assert.deepEqual(ws().frames(), [{ type: "subscribe", stream: "b", since: null }]);
});

test("ignores unknown frame types, unknown fields, non-JSON and binary frames", () => {
  const { client, ws } = setup();
  const { got } = follow(client, "a", { since: 0 });
  ws().open();
  ws().receive({ type: "subscribed", stream: "a", seq: 1, shiny: true });
  ws().receive({ type: "something-new", stream: "a", seq: 99 });
  ws().receive("not json");
  ws().receive("42");
  ws().onmessage({ data: new ArrayBuffer(4) });
  ws().receive({ type: "heartbeat" });
  ws().receive({ ...ev("a", 1), future_field: { x: 1 } });
  ws().receive({ type: "event", stream: "a", seq: "2", op: "post.created" }); // bad seq
  assert.deepEqual(got.seqs(), [1]);
  assert.equal(got.events[0].future_field.x, 1);
  assert.equal(client.status, "live");
});

test("delivers events with ops this version does not know (the page ignores them)", () => {
  const { client, ws } = setup();
  const { sub, got } = follow(client, "a", { since: 0 });
  ws().open();
  ws().receive({ type: "subscribed", stream: "a", seq: 2 });
  ws().receive(ev("a", 1, "post.reacted"));
  ws().receive(ev("a", 2, "post.created"));
  assert.deepEqual(got.events.map((e) => e.op), ["post.reacted", "post.created"]);
  assert.equal(sub.lastSeq, 2);
});

test("an onEvent that throws is reported to onError and does not break delivery", () => {
  const { client, ws } = setup();
  const seen = [];
  const errors = [];
  client.subscribe("a", {
    since: 0,
    onEvent: (e) => {
      seen.push(e.seq);
      if (e.seq === 1) throw new Error("page bug");
    },
    onError: (err) => errors.push(err),
  });
  ws().open();
  ws().receive(ev("a", 1));
  ws().receive(ev("a", 2));
  assert.deepEqual(seen, [1, 2]);
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof BulletinError);
  assert.equal(errors[0].code, "handler_error");
  assert.equal(errors[0].cause.message, "page bug");
  assert.equal(client.status, "live");
  assert.equal(ws().closedBy, null);
});

test("a throwing handler without onError goes to console.error, and so does a throwing listener", (t) => {
  const logged = [];
  t.mock.method(console, "error", (...args) => logged.push(args));
  const { client, ws } = setup();
  client.on("status", () => {
    throw new Error("listener bug");
  });
  client.subscribe("a", { since: 0, onEvent: () => { throw new Error("boom"); } });
  ws().open();
  ws().receive(ev("a", 1));
  ws().receive(ev("a", 2));
  assert.equal(client.status, "live");
  assert.ok(logged.some((args) => String(args[0]).includes("onEvent threw")));
  assert.ok(logged.some((args) => String(args[0]).includes("status listener threw")));
});

test("an error frame for a stream goes to its onError; stream_not_found ends the subscription", () => {
  const { client, ws } = setup();
  const a = follow(client, "a");
  const b = follow(client, "b");
  ws().open();
  ws().receive({ type: "error", code: "stream_not_found", message: "no stream 'a'", stream: "a" });
  assert.equal(a.got.errors.length, 1);
  assert.equal(a.got.errors[0].code, "stream_not_found");
  assert.equal(a.got.errors[0].stream, "a");
  assert.equal(a.sub.active, false);
  ws().receive({ type: "error", code: "bad_since", message: "since…", stream: "b" });
  assert.equal(b.got.errors[0].code, "bad_since");
  assert.equal(b.sub.active, true);
  assert.equal(client.status, "live");
});

test("unavailable: the server could not read the stream now; subscribe again after a delay", async () => {
  const { client, clock, ws } = setup();
  const a = follow(client, "a", { since: 7 });
  ws().open();
  const subscribes = () => ws().frames().filter((f) => f.type === "subscribe" && f.stream === "a");
  assert.equal(subscribes().length, 1);
  ws().receive({ type: "error", code: "unavailable", message: "later", stream: "a" });
  assert.equal(a.got.errors[0].code, "unavailable");
  assert.equal(a.sub.active, true);
  assert.equal(subscribes().length, 1); // not at once: the server is struggling
  await clock.advance(5_000); // well inside the heartbeat watchdog's time
  assert.deepEqual(subscribes().map((f) => f.since), [7, 7]);
  ws().receive({ type: "subscribed", stream: "a", seq: 9 });
  ws().receive(ev("a", 8));
  assert.equal(a.got.events.length, 1);
});

test("4009 too many requests: reconnect after a back-off delay, not at once", async () => {
  const { client, clock, WebSocket, ws } = setup();
  follow(client, "a");
  ws().open();
  ws().receive({ type: "subscribed", stream: "a", seq: 1 });
  ws().serverClose(4009, "too many frames; slow down");
  assert.equal(client.status, "reconnecting");
  assert.equal(WebSocket.instances.length, 1);
  await clock.advance(60_000);
  assert.equal(WebSocket.instances.length, 2);
});

test("an error frame without a stream goes to client.on('error')", () => {
  const { client, ws } = setup();
  const errors = [];
  const off = client.on("error", (err) => errors.push(err));
  client.subscribe("a");
  ws().open();
  ws().receive({ type: "error", code: "bad_json", message: "not JSON" });
  assert.deepEqual(errors.map((e) => [e.code, e.message, e.stream]), [["bad_json", "not JSON", null]]);
  off();
  ws().receive({ type: "error", code: "bad_json", message: "again" });
  assert.equal(errors.length, 1);
});

test("on() returns a function that removes the listener, and rejects unknown event names", () => {
  const { client, ws } = setup();
  const seen = [];
  const off = client.on("status", (s) => seen.push(s));
  client.subscribe("a");
  ws().open();
  off();
  ws().fail();
  assert.deepEqual(seen, ["live"]);
  assert.throws(() => client.on("nope", () => {}), TypeError);
});

test("React Native: with a token and webSocketHeaders, sends Authorization as the 3rd ctor argument", () => {
  const { client, ws } = setup({ options: { token: "blt_secret", webSocketHeaders: true } });
  client.subscribe("a");
  assert.deepEqual(ws().options, { headers: { Authorization: "Bearer blt_secret" } });
  assert.deepEqual(ws().protocols, []);
});

test("React Native is detected from navigator.product; browsers never get the token on WebSocket", () => {
  const browser = setup({ options: { token: "blt_secret" } });
  browser.client.subscribe("a");
  assert.equal(browser.ws().argCount, 1);
  const saved = Object.getOwnPropertyDescriptor(globalThis, "navigator");
  Object.defineProperty(globalThis, "navigator", { value: { product: "ReactNative" },
    configurable: true });
  try {
    const rn = setup({ options: { token: "blt_secret", document: undefined, window: undefined } });
    rn.client.subscribe("a");
    assert.deepEqual(rn.ws().options, { headers: { Authorization: "Bearer blt_secret" } });
  } finally {
    if (saved) Object.defineProperty(globalThis, "navigator", saved);
    else delete globalThis.navigator;
  }
});

test("works with no document and no window (React Native) and WebSocket only", () => {
  const { client, ws } = setup({ options: { document: undefined, window: undefined,
    EventSource: undefined } });
  const { got } = follow(client, "a", { since: 0 });
  ws().open();
  ws().receive(ev("a", 1));
  assert.deepEqual(got.seqs(), [1]);
  assert.equal(client.transport, "websocket");
});

test("close() closes the socket, stops timers and callbacks, removes page listeners", async () => {
  const { client, ws, clock, document, window, statuses } = setup();
  const { got } = follow(client, "a", { since: 0 });
  ws().open();
  assert.equal(document.count("visibilitychange"), 1);
  assert.equal(window.count("online"), 1);
  client.close();
  assert.equal(ws().closedBy.code, 1000);
  assert.equal(client.status, "closed");
  assert.deepEqual(statuses.at(-1), { status: "closed", transport: "websocket", attempt: 0,
    delay: null, code: 1000, reason: "client closed" });
  ws().receive(ev("a", 1));
  assert.deepEqual(got.seqs(), []);
  assert.equal(clock.timers.size, 0);
  assert.equal(document.count("visibilitychange"), 0);
  assert.equal(window.count("online") + window.count("offline"), 0);
  assert.throws(() => client.subscribe("b"), /after close/);
  client.reconnectNow();
  await clock.advance(60000);
  assert.equal(client.status, "closed");
});

test("FakeTarget sanity: document and window are optional event targets", () => {
  const t = new FakeTarget();
  let n = 0;
  const fn = () => n++;
  t.addEventListener("x", fn);
  t.dispatch("x");
  t.removeEventListener("x", fn);
  t.dispatch("x");
  assert.equal(n, 1);
});

test("presence() is sent once the stream is asked for, and again after a reconnect", async () => {
  const { client, clock, WebSocket, ws } = setup();
  const { sub } = follow(client, "a");
  sub.presence(null, "viewing");
  assert.equal(WebSocket.instances.length, 1);
  ws().open();
  assert.deepEqual(ws().frames(), [
    { type: "subscribe", stream: "a", since: null },
    { type: "presence", stream: "a", post: null, state: "viewing" },
  ]);
  ws().receive({ type: "subscribed", stream: "a", seq: 1 });
  sub.presence(4, "editing");
  assert.deepEqual(ws().frames().at(-1), { type: "presence", stream: "a", post: 4, state: "editing" });
  ws().serverClose(4000, "slow");
  await clock.advance(60_000);
  assert.equal(WebSocket.instances.length, 2);
  ws().open();
  assert.deepEqual(ws().frames(), [
    { type: "subscribe", stream: "a", since: 1 },
    { type: "presence", stream: "a", post: 4, state: "editing" },
  ]);
  sub.unsubscribe();
  const sent = ws().sent.length;
  sub.presence(null, "viewing");
  assert.equal(ws().sent.length, sent);
});

test("presence, readers and queue frames reach onPresence, onReaders and onQueue of their stream only", () => {
  const { client, ws } = setup();
  const seen = { a: [], b: [] };
  for (const slug of ["a", "b"]) {
    follow(client, slug, {
      onPresence: (editors) => seen[slug].push(["presence", editors]),
      onReaders: (count) => seen[slug].push(["readers", count]),
      onQueue: (...args) => seen[slug].push(["queue", ...args]),
    });
  }
  ws().open();
  const ada = { editor: 1, name: "Ada", post: 3, state: "editing", since: "2026-01-01T00:00:00.000Z" };
  ws().receive({ type: "presence", stream: "a", editors: [ada] });
  ws().receive({ type: "readers", stream: "a", count: 12 });
  ws().receive({ type: "readers", stream: "a", count: "12" });
  ws().receive({ type: "presence", stream: "zzz", editors: [] });
  ws().receive({ type: "queue", stream: "b" });
  ws().receive({ type: "queue", stream: "zzz" });
  assert.deepEqual(seen.a, [["presence", [ada]], ["readers", 12]]);
  assert.deepEqual(seen.b, [["queue", undefined]]);
});
