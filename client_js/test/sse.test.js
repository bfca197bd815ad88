import { test } from "node:test";
import assert from "node:assert/strict";

import { BASE, ev, flush, follow, setup } from "./fakes.js";

const streamUrl = (slug) => `${BASE}/api/streams/${slug}`;

/** A client that has fallen back to SSE after two WebSocket failures. */
async function onSse(options = {}, routes = {}) {
  const t = setup({ options, routes });
  const subs = {
    a: follow(t.client, "a", { since: 3 }),
    b: follow(t.client, "b"),
  };
  t.ws().fail();
  await t.clock.advance(t.statuses.at(-1).delay);
  t.ws().fail();
  return { ...t, subs };
}

test("falls back to SSE after 2 consecutive WebSocket failures: one EventSource per stream", async () => {
  const t = await onSse();
  assert.equal(t.WebSocket.instances.length, 2);
  assert.equal(t.client.transport, "sse");
  assert.deepEqual(t.EventSource.instances.map((e) => e.url), [
    `${BASE}/api/streams/a/events?since=3`,
    `${BASE}/api/streams/b/events`,
  ]);
  assert.equal(t.client.status, "reconnecting");
  t.es("a").open();
  assert.equal(t.client.status, "reconnecting", "live once every stream is open");
  t.es("b").open();
  assert.equal(t.client.status, "live");
  assert.equal(t.statuses.at(-1).transport, "sse");
});

test("a single WebSocket failure does not fall back", async () => {
  const t = setup();
  t.client.subscribe("a");
  t.ws().fail();
  await t.clock.advance(t.statuses.at(-1).delay);
  assert.equal(t.WebSocket.instances.length, 2);
  assert.equal(t.EventSource.instances.length, 0);
});

test("a WebSocket that opens but closes before any frame counts as a failure", async () => {
  const t = setup();
  t.client.subscribe("a");
  for (let i = 0; i < 2; i++) {
    t.ws().open();
    t.ws().serverClose(1006, "");
    if (i === 0) await t.clock.advance(t.statuses.at(-1).delay);
  }
  assert.equal(t.client.transport, "sse");
  assert.equal(t.EventSource.instances.length, 1);
});

test("once WebSocket has delivered frames, later failures stay on WebSocket (an outage, not a proxy)", async () => {
  const t = setup();
  follow(t.client, "a", { since: 0 });
  t.ws().open();
  t.ws().receive({ type: "subscribed", stream: "a", seq: 0 });
  for (let i = 0; i < 5; i++) {
    t.ws().fail();
    await t.clock.advance(t.statuses.at(-1).delay);
  }
  assert.equal(t.EventSource.instances.length, 0);
  assert.equal(t.WebSocket.instances.length, 6);
});

test("SSE: events are applied once in order; subscribed sets lastSeq when since was null", async () => {
  const t = await onSse();
  const { a, b } = t.subs;
  t.es("a").open();
  t.es("b").open();
  t.es("a").emit("subscribed", { type: "subscribed", stream: "a", seq: 5 });
  t.es("a").event(ev("a", 3)); // duplicate of what the page shows
  t.es("a").event(ev("a", 4));
  t.es("a").event(ev("a", 5, "post.edited"));
  t.es("a").event(ev("a", 5, "post.edited"));
  t.es("b").emit("subscribed", { type: "subscribed", stream: "b", seq: 9 });
  t.es("b").event(ev("b", 10, "stream.updated", { post: undefined, stream_info: { status: "live" } }));
  assert.deepEqual(a.got.seqs(), [4, 5]);
  assert.deepEqual(a.got.subscribed, [5]);
  assert.equal(a.sub.lastSeq, 5);
  assert.equal(b.sub.lastSeq, 10);
  assert.deepEqual(b.got.subscribed, [9]);
  assert.equal(b.got.events[0].stream_info.status, "live");
});

test("SSE: listens to every known op by name (EventSource's onmessage only sees unnamed events)", async () => {
  const t = await onSse();
  const names = [...t.es("a").listeners.keys()];
  for (const op of ["post.created", "post.edited", "post.deleted", "post.pinned",
    "post.unpinned", "post.embedded", "stream.updated", "stream.ended", "subscribed", "reset", "error", "open"]) {
    assert.ok(names.includes(op), op);
  }
});

test("SSE: a seq jump (an op this version does not listen to) is not treated as an error", async () => {
  const t = await onSse();
  const { a } = t.subs;
  t.es("a").open();
  t.es("a").event(ev("a", 4));
  t.es("a").event(ev("a", 6)); // 5 was an unknown op the library has no listener for
  assert.deepEqual(a.got.seqs(), [4, 6]);
  assert.equal(t.EventSource.instances.length, 2, "no reconnect");
});

test("SSE: on error we close the EventSource (no browser auto-reconnect) and reopen with since=lastSeq", async () => {
  const t = await onSse();
  const { a } = t.subs;
  const first = t.es("a");
  first.open();
  t.es("b").open();
  first.event(ev("a", 4));
  first.fail();
  assert.equal(first.closed, true, "closed so that its own Last-Event-ID retry cannot race ours");
  assert.equal(t.client.status, "reconnecting");
  const delay = t.statuses.at(-1).delay;
  await t.clock.advance(delay - 1);
  assert.equal(t.es("a"), first);
  await t.clock.advance(1);
  assert.notEqual(t.es("a"), first);
  assert.equal(t.es("a").url, `${BASE}/api/streams/a/events?since=4`);
  first.event(ev("a", 5)); // a late event from the closed source is ignored
  assert.deepEqual(a.got.seqs(), [4]);
  t.es("a").open();
  assert.equal(t.client.status, "live");
});

test("SSE: a stream that fails before opening is checked over HTTP; 404 ends it with stream_not_found", async () => {
  const t = await onSse({}, { [streamUrl("b")]: { status: 404,
    body: { error: { code: "stream_not_found", message: "no" } } } });
  const { b } = t.subs;
  t.es("a").open();
  t.es("b").fail();
  await flush();
  assert.deepEqual(t.fetch.calls.map((c) => c.url), [streamUrl("b")]);
  assert.equal(b.got.errors[0].code, "stream_not_found");
  assert.equal(b.got.errors[0].status, 404);
  assert.equal(b.sub.active, false);
  assert.equal(t.client.status, "live", "the remaining stream is live");
  await t.clock.advance(60000);
  assert.equal(t.EventSource.instances.filter((e) => e.url.includes("/b/")).length, 1);
});

test("SSE: a stream that fails before opening while the stream exists is retried with back-off", async () => {
  const t = await onSse({}, { [streamUrl("a")]: { status: 200, body: { slug: "a", seq: 3 } } });
  t.es("a").fail();
  await flush();
  assert.equal(t.client.status, "reconnecting");
  await t.clock.advance(t.statuses.at(-1).delay);
  assert.equal(t.EventSource.instances.filter((e) => e.url.includes("/a/")).length, 2);
});

test("SSE: a server error record (event: error with data) goes to onError", async () => {
  const t = await onSse();
  const { a } = t.subs;
  t.es("a").open();
  t.es("a").emit("error", { type: "error", code: "stream_not_found", message: "gone", stream: "a" });
  assert.equal(a.got.errors[0].code, "stream_not_found");
  assert.equal(a.sub.active, false);
  assert.equal(t.es("a").closed, true);
});

test("SSE reset: closes the response, reloads over HTTP, calls onReset, reopens with since=the loaded seq", async () => {
  const routes = {
    [streamUrl("a")]: { body: { slug: "a", seq: 1500, pinned: [{ id: 9 }] } },
    [`${streamUrl("a")}/posts`]: { body: { posts: [{ id: 12 }, { id: 11 }], next_cursor: null } },
  };
  const t = await onSse({}, routes);
  const { a } = t.subs;
  const first = t.es("a");
  first.open();
  first.emit("reset", { type: "reset", stream: "a", seq: 1490 });
  assert.equal(first.closed, true);
  await flush();
  assert.equal(a.got.resets.length, 1);
  assert.deepEqual(a.got.resets[0], { stream: { slug: "a", seq: 1500, pinned: [{ id: 9 }] },
    posts: [{ id: 12 }, { id: 11 }], pinned: [{ id: 9 }] });
  assert.equal(a.sub.lastSeq, 1500);
  assert.equal(t.es("a").url, `${BASE}/api/streams/a/events?since=1500`);
  t.es("a").open();
  t.es("a").event(ev("a", 1500));
  t.es("a").event(ev("a", 1501));
  assert.deepEqual(a.got.seqs(), [1501]);
});

test("SSE: the token goes to the EventSource init (polyfills send it) and to fetch", async () => {
  const t = await onSse({ token: "blt_x" }, {
    [streamUrl("a")]: { body: { slug: "a", seq: 4, pinned: [] } },
    [`${streamUrl("a")}/posts`]: { body: { posts: [] } },
  });
  assert.deepEqual(t.es("a").init, { headers: { Authorization: "Bearer blt_x" } });
  t.es("a").open();
  t.es("a").emit("reset", { type: "reset", stream: "a", seq: 4 });
  await flush();
  assert.ok(t.fetch.calls.length >= 2);
  for (const call of t.fetch.calls) {
    assert.equal(call.init.headers.Authorization, "Bearer blt_x");
    assert.equal(call.init.headers.Accept, "application/json");
  }
});

test("SSE: tries WebSocket again every upgradeInterval and switches back when it opens", async () => {
  const t = await onSse({ upgradeInterval: 300000 });
  const { a, b } = t.subs;
  t.es("a").open();
  t.es("b").open();
  t.es("a").event(ev("a", 4));
  t.es("b").emit("subscribed", { type: "subscribed", stream: "b", seq: 7 });
  await t.clock.advance(299999);
  assert.equal(t.WebSocket.instances.length, 2);
  await t.clock.advance(1);
  assert.equal(t.WebSocket.instances.length, 3);
  assert.equal(t.client.transport, "sse", "still on SSE until the probe opens");
  const probe = t.ws();
  probe.open();
  assert.equal(t.client.transport, "websocket");
  assert.ok(t.EventSource.instances.every((e) => e.closed));
  assert.deepEqual(probe.frames(), [
    { type: "subscribe", stream: "a", since: 4 },
    { type: "subscribe", stream: "b", since: 7 },
  ]);
  probe.receive({ type: "subscribed", stream: "a", seq: 5 });
  probe.receive(ev("a", 4));
  probe.receive(ev("a", 5));
  assert.deepEqual(a.got.seqs(), [4, 5]);
  assert.equal(b.sub.lastSeq, 7);
  assert.equal(t.client.status, "live");
});

test("SSE: a failed WebSocket probe leaves SSE alone and is tried again later", async () => {
  const t = await onSse({ upgradeInterval: 1000 });
  t.es("a").open();
  t.es("b").open();
  await t.clock.advance(1000);
  t.ws().fail();
  assert.equal(t.client.transport, "sse");
  assert.equal(t.client.status, "live");
  assert.ok(t.EventSource.instances.every((e) => !e.closed));
  await t.clock.advance(1000);
  assert.equal(t.WebSocket.instances.length, 4);
});

test("back on WebSocket after a probe, one more failure returns to SSE", async () => {
  const t = await onSse({ upgradeInterval: 1000 });
  await t.clock.advance(1000);
  t.ws().open();
  assert.equal(t.client.transport, "websocket");
  t.ws().serverClose(1006, "");
  assert.equal(t.client.transport, "sse");
});

test("4003 forbidden origin: falls back to SSE at once and never probes WebSocket again", async () => {
  const t = setup({ options: { upgradeInterval: 1000 } });
  follow(t.client, "a", { since: 2 });
  t.ws().open();
  t.ws().serverClose(4003, "origin not allowed");
  assert.equal(t.client.transport, "sse");
  assert.equal(t.es("a").url, `${BASE}/api/streams/a/events?since=2`);
  await t.clock.advance(3600000);
  assert.equal(t.WebSocket.instances.length, 1);
});

test("transports ['sse'] uses SSE from the start; WebSocket is never opened", async () => {
  const t = setup({ options: { transports: ["sse"] } });
  const { got } = follow(t.client, "a");
  assert.equal(t.WebSocket.instances.length, 0);
  t.es("a").open();
  assert.equal(t.client.status, "live");
  t.es("a").emit("subscribed", { type: "subscribed", stream: "a", seq: 1 });
  t.es("a").event(ev("a", 2));
  assert.deepEqual(got.seqs(), [2]);
  await t.clock.advance(3600000);
  assert.equal(t.WebSocket.instances.length, 0);
});

test("transports ['sse', 'websocket']: SSE failing to open twice moves to WebSocket", async () => {
  const t = setup({ options: { transports: ["sse", "websocket"] },
    routes: { [streamUrl("a")]: { body: { slug: "a", seq: 0 } } } });
  t.client.subscribe("a");
  t.es("a").fail();
  await flush();
  await t.clock.advance(t.statuses.at(-1).delay);
  t.es("a").fail();
  await flush();
  assert.equal(t.WebSocket.instances.length, 1);
  t.ws().open();
  assert.equal(t.client.transport, "websocket");
});

test("SSE: subscribe opens a new EventSource; unsubscribe closes it", async () => {
  const t = await onSse();
  t.es("a").open();
  t.es("b").open();
  const c = follow(t.client, "c", { since: 1 });
  assert.equal(t.es("c").url, `${BASE}/api/streams/c/events?since=1`);
  c.sub.unsubscribe();
  assert.equal(t.es("c").closed, true);
  t.es("c").event(ev("c", 2));
  assert.deepEqual(c.got.seqs(), []);
});

test("SSE: becoming visible reopens streams waiting for their retry at once", async () => {
  const t = await onSse({ random: () => 0.99 });
  t.es("a").open();
  t.es("b").open();
  t.es("a").fail();
  const count = t.EventSource.instances.length;
  t.document.visibilityState = "visible";
  t.document.dispatch("visibilitychange");
  assert.equal(t.EventSource.instances.length, count + 1);
  assert.equal(t.es("a").url, `${BASE}/api/streams/a/events?since=3`);
});

test("SSE: offline holds retries; online reopens at once", async () => {
  const t = await onSse();
  t.es("a").open();
  t.es("b").open();
  t.window.dispatch("offline");
  t.es("a").fail();
  t.es("b").fail();
  assert.equal(t.client.status, "offline");
  await t.clock.advance(600000);
  assert.equal(t.EventSource.instances.length, 2);
  t.window.dispatch("online");
  assert.equal(t.EventSource.instances.length, 4);
});

test("SSE: close() closes every EventSource", async () => {
  const t = await onSse();
  t.client.close();
  assert.ok(t.EventSource.instances.every((e) => e.closed));
  assert.equal(t.client.status, "closed");
});
