import { test } from "node:test";
import assert from "node:assert/strict";

import { BASE, ev, flush, follow, setup } from "./fakes.js";

const streamUrl = (slug) => `${BASE}/api/streams/${slug}`;

function snapshotRoutes(slug, seq, extra = {}) {
  return {
    [streamUrl(slug)]: { body: { slug, title: "T", status: "live", seq,
      pinned: [{ id: 1, pinned: true }] } },
    [`${streamUrl(slug)}/posts`]: { body: { stream: slug, seq,
      posts: [{ id: 3 }, { id: 2 }, { id: 1 }], next_cursor: null } },
    ...extra,
  };
}

test("WS reset: reloads the stream and its posts over HTTP, calls onReset, then subscribes from the loaded seq", async () => {
  const t = setup({ routes: snapshotRoutes("a", 2000) });
  const order = [];
  const { sub, got } = follow(t.client, "a", {
    since: 10,
    onReset: (s) => { order.push("reset"); got.resets.push(s); },
    onEvent: (e) => { order.push(e.seq); got.events.push(e); },
  });
  t.ws().open();
  t.ws().receive({ type: "reset", stream: "a", seq: 1999 });
  await flush();
  assert.deepEqual(t.fetch.calls.map((c) => c.url), [streamUrl("a"), `${streamUrl("a")}/posts`]);
  assert.equal(t.fetch.calls[0].init.headers.Accept, "application/json");
  assert.equal(t.fetch.calls[0].init.headers.Authorization, undefined);
  assert.deepEqual(got.resets, [{
    stream: { slug: "a", title: "T", status: "live", seq: 2000, pinned: [{ id: 1, pinned: true }] },
    posts: [{ id: 3 }, { id: 2 }, { id: 1 }],
    pinned: [{ id: 1, pinned: true }],
  }]);
  assert.equal(sub.lastSeq, 2000);
  assert.deepEqual(t.ws().frames(), [
    { type: "subscribe", stream: "a", since: 10 },
    { type: "subscribe", stream: "a", since: 2000 },
  ]);
  t.ws().receive({ type: "subscribed", stream: "a", seq: 2001 });
  t.ws().receive(ev("a", 2001));
  assert.deepEqual(order, ["reset", 2001]);
  assert.deepEqual(got.subscribed, [2001]);
});

test("since ahead of the server: the reset lowers lastSeq to the reloaded seq", async () => {
  const t = setup({ routes: snapshotRoutes("a", 3) });
  const { sub, got } = follow(t.client, "a", { since: 500 });
  t.ws().open();
  t.ws().receive({ type: "reset", stream: "a", seq: 3 });
  await flush();
  assert.equal(sub.lastSeq, 3);
  t.ws().receive({ type: "subscribed", stream: "a", seq: 4 });
  t.ws().receive(ev("a", 4));
  assert.deepEqual(got.seqs(), [4]);
});

test("other streams keep flowing while one stream reloads", async () => {
  let release;
  const gate = new Promise((resolve) => { release = resolve; });
  const routes = snapshotRoutes("a", 50);
  const answer = routes[streamUrl("a")];
  routes[streamUrl("a")] = () => gate.then(() => answer);
  const t = setup({ routes });
  const a = follow(t.client, "a", { since: 1 });
  const b = follow(t.client, "b", { since: 1 });
  t.ws().open();
  t.ws().receive({ type: "reset", stream: "a", seq: 50 });
  t.ws().receive({ type: "subscribed", stream: "b", seq: 2 });
  t.ws().receive(ev("b", 2));
  t.ws().receive(ev("a", 2)); // not subscribed during the reset: ignored
  assert.deepEqual(b.got.seqs(), [2]);
  assert.deepEqual(a.got.seqs(), []);
  release();
  await flush();
  assert.equal(a.got.resets.length, 1);
  assert.deepEqual(t.ws().frames().at(-1), { type: "subscribe", stream: "a", since: 50 });
});

test("a failed reload is reported to onError and retried with back-off until it works", async () => {
  let fail = 2;
  const routes = snapshotRoutes("a", 70);
  const ok = routes[streamUrl("a")];
  routes[streamUrl("a")] = () => (fail-- > 0
    ? { status: 503, body: { error: { code: "database_unavailable", message: "retry" } } }
    : ok);
  const t = setup({ routes });
  const { sub, got } = follow(t.client, "a", { since: 1 });
  t.ws().open();
  t.ws().receive({ type: "reset", stream: "a", seq: 70 });
  await flush();
  assert.deepEqual(got.errors.map((e) => [e.code, e.status, e.stream]),
    [["database_unavailable", 503, "a"]]);
  assert.equal(got.resets.length, 0);
  await t.clock.advance(250); // attempt 0: random 0.5 * 500
  assert.equal(got.errors.length, 2);
  await t.clock.advance(500); // attempt 1: 0.5 * 1000
  assert.equal(got.resets.length, 1);
  assert.equal(sub.lastSeq, 70);
  assert.deepEqual(t.ws().frames().at(-1), { type: "subscribe", stream: "a", since: 70 });
});

test("a network error during the reload is reported as reload_failed and retried", async () => {
  const routes = snapshotRoutes("a", 5);
  const ok = routes[streamUrl("a")];
  let calls = 0;
  routes[streamUrl("a")] = () => (calls++ === 0 ? new TypeError("Failed to fetch") : ok);
  const t = setup({ routes });
  const { got } = follow(t.client, "a", { since: 1 });
  t.ws().open();
  t.ws().receive({ type: "reset", stream: "a", seq: 5 });
  await flush();
  assert.equal(got.errors[0].code, "reload_failed");
  await t.clock.advance(250);
  assert.equal(got.resets.length, 1);
});

test("a reload answered 404 ends the subscription with stream_not_found", async () => {
  const t = setup({ routes: { [streamUrl("a")]: { status: 404,
    body: { error: { code: "stream_not_found", message: "no stream" } } } } });
  const { sub, got } = follow(t.client, "a", { since: 1 });
  t.ws().open();
  t.ws().receive({ type: "reset", stream: "a", seq: 5 });
  await flush();
  assert.equal(got.errors[0].code, "stream_not_found");
  assert.equal(sub.active, false);
  const first = t.ws();
  await t.clock.advance(60000); // the silent socket is replaced meanwhile; "a" stays dropped
  assert.equal(first.frames().length, 1);
  t.ws().open();
  assert.deepEqual(t.ws().frames(), []);
});

test("a reconnect during the reload does not resubscribe with the stale seq", async () => {
  let release;
  const gate = new Promise((resolve) => { release = resolve; });
  const routes = snapshotRoutes("a", 900);
  const answer = routes[streamUrl("a")];
  routes[streamUrl("a")] = () => gate.then(() => answer);
  const t = setup({ routes });
  const { got } = follow(t.client, "a", { since: 1 });
  follow(t.client, "b", { since: 0 });
  t.ws().open();
  t.ws().receive({ type: "reset", stream: "a", seq: 900 });
  t.ws().fail();
  await t.clock.advance(t.statuses.at(-1).delay);
  t.ws().open();
  assert.deepEqual(t.ws().frames(), [{ type: "subscribe", stream: "b", since: 0 }]);
  release();
  await flush();
  assert.equal(got.resets.length, 1);
  assert.deepEqual(t.ws().frames().at(-1), { type: "subscribe", stream: "a", since: 900 });
});

test("an onReset that throws is reported and the stream is still resubscribed", async () => {
  const t = setup({ routes: snapshotRoutes("a", 8) });
  const errors = [];
  {
    t.client.subscribe("a", {
      since: 1,
      onReset: () => { throw new Error("render failed"); },
      onError: (e) => errors.push(e.code),
    });
  }
  t.ws().open();
  t.ws().receive({ type: "reset", stream: "a", seq: 8 });
  await flush();
  assert.deepEqual(errors, ["handler_error"]);
  assert.deepEqual(t.ws().frames().at(-1), { type: "subscribe", stream: "a", since: 8 });
});

test("unsubscribing during the reload: no onReset, no subscribe", async () => {
  let release;
  const gate = new Promise((resolve) => { release = resolve; });
  const routes = snapshotRoutes("a", 9);
  const answer = routes[streamUrl("a")];
  routes[streamUrl("a")] = () => gate.then(() => answer);
  const t = setup({ routes });
  const { sub, got } = follow(t.client, "a", { since: 1 });
  t.ws().open();
  t.ws().receive({ type: "reset", stream: "a", seq: 9 });
  sub.unsubscribe();
  release();
  await flush();
  assert.equal(got.resets.length, 0);
  assert.equal(t.ws().frames().length, 1);
});

test("the token is sent as Authorization on reload requests; postsLimit sets the page size", async () => {
  const routes = snapshotRoutes("a", 4);
  routes[`${streamUrl("a")}/posts?limit=50`] = routes[`${streamUrl("a")}/posts`];
  const t = setup({ options: { token: "blt_editor", postsLimit: 50 }, routes });
  follow(t.client, "a", { since: 1 });
  t.ws().open();
  t.ws().receive({ type: "reset", stream: "a", seq: 4 });
  await flush();
  assert.deepEqual(t.fetch.calls.map((c) => c.url), [streamUrl("a"), `${streamUrl("a")}/posts?limit=50`]);
  assert.ok(t.fetch.calls.every((c) => c.init.headers.Authorization === "Bearer blt_editor"));
});

test("loadSnapshot() is public: the same {stream, posts, pinned} a reset delivers", async () => {
  const t = setup({ routes: snapshotRoutes("a", 12) });
  const snap = await t.client.loadSnapshot("a");
  assert.equal(snap.stream.seq, 12);
  assert.equal(snap.posts.length, 3);
  assert.deepEqual(snap.pinned, [{ id: 1, pinned: true }]);
});
