import { test } from "node:test";
import assert from "node:assert/strict";

import { CLOSE_POLICIES, backoffDelay, closePolicy } from "../client.js";
import { ev, fixedRandom, follow, setup } from "./fakes.js";

/** Open the newest socket, confirm the subscription of `slug` and deliver seqs 1..n. */
function liveWith(t, slug, n) {
  t.ws().open();
  t.ws().receive({ type: "subscribed", stream: slug, seq: n });
  for (let seq = 1; seq <= n; seq++) t.ws().receive(ev(slug, seq));
}

test("close policies match server/closecodes.py; unknown codes back off", () => {
  assert.deepEqual(
    Object.fromEntries([1000, 1001, 1002, 1009, 1011, 1012, 4000, 4001, 4003, 4008, 4029]
      .map((c) => [c, CLOSE_POLICIES[c]])),
    { 1000: "no", 1001: "backoff", 1002: "no", 1009: "no", 1011: "backoff",
      1012: "backoff", 4000: "now", 4001: "no", 4003: "no", 4008: "no", 4029: "no" });
  assert.equal(closePolicy(1006), "backoff");
  assert.equal(closePolicy(4999), "backoff");
  assert.equal(closePolicy(1008), "no");
  assert.equal(closePolicy(1003), "no");
});

test("back-off is full jitter: random() * min(max, initial * 2^attempt)", () => {
  const b = { initial: 500, max: 30000 };
  assert.equal(backoffDelay(0, b, () => 1 - 1e-12) < 500, true);
  assert.equal(backoffDelay(0, b, () => 0.5), 250);
  assert.equal(backoffDelay(3, b, () => 0.5), 2000);
  assert.equal(backoffDelay(6, b, () => 0.5), 15000);
  assert.equal(backoffDelay(7, b, () => 0.5), 15000); // capped at max 30 s
  assert.equal(backoffDelay(40, b, () => 0.999), 29970);
  assert.equal(backoffDelay(5, b, () => 0), 0);
  assert.equal(backoffDelay(0, b, () => 0.5, 2000), 1000); // floor after going away
});

test("reconnects after a network drop (1006) and resumes every stream from its lastSeq", async () => {
  const t = setup();
  const a = follow(t.client, "a", { since: 0 });
  const b = follow(t.client, "b", { since: 10 });
  liveWith(t, "a", 3);
  t.ws().receive({ type: "subscribed", stream: "b", seq: 10 });
  const first = t.ws();
  first.fail();
  assert.equal(t.client.status, "reconnecting");
  assert.deepEqual(t.statuses.at(-1), { status: "reconnecting", transport: "websocket",
    attempt: 0, delay: 250, code: 1006, reason: "WebSocket error" });
  await t.clock.advance(249);
  assert.equal(t.WebSocket.instances.length, 1, "waits for the jittered delay");
  await t.clock.advance(1);
  assert.equal(t.WebSocket.instances.length, 2);
  t.ws().open();
  assert.deepEqual(t.ws().frames(), [
    { type: "subscribe", stream: "a", since: 3 },
    { type: "subscribe", stream: "b", since: 10 },
  ]);
  t.ws().receive({ type: "subscribed", stream: "a", seq: 5 });
  t.ws().receive(ev("a", 3)); // a duplicate across the reconnect
  t.ws().receive(ev("a", 4));
  t.ws().receive(ev("a", 5));
  first.receive(ev("a", 6)); // the old socket is dead to us
  assert.deepEqual(a.got.seqs(), [1, 2, 3, 4, 5]);
  assert.deepEqual(b.got.seqs(), []);
  assert.equal(t.client.status, "live");
});

test("back-off grows exponentially with full jitter and is capped (fixed random)", async () => {
  const t = setup({ options: { random: () => 0.999, backoff: { initial: 500, max: 4000 },
    transports: ["websocket"] } });
  t.client.subscribe("a");
  const delays = [];
  for (let i = 0; i < 6; i++) {
    t.ws().fail();
    const s = t.statuses.at(-1);
    assert.equal(s.status, "reconnecting");
    delays.push(s.delay);
    const before = t.WebSocket.instances.length;
    await t.clock.advance(s.delay - 1);
    assert.equal(t.WebSocket.instances.length, before);
    await t.clock.advance(1);
    assert.equal(t.WebSocket.instances.length, before + 1);
  }
  assert.deepEqual(delays.map((d) => Math.round(d)), [500, 999, 1998, 3996, 3996, 3996]);
  assert.deepEqual(t.statuses.filter((s) => s.status === "reconnecting").map((s) => s.attempt),
    [0, 1, 2, 3, 4, 5]);
});

test("jitter spreads reconnects: each delay is random() times the window", async () => {
  const random = fixedRandom(0.1, 0.9, 0.0);
  const t = setup({ options: { random, transports: ["websocket"] } });
  t.client.subscribe("a");
  const delays = [];
  for (let i = 0; i < 3; i++) {
    t.ws().fail();
    delays.push(t.statuses.at(-1).delay);
    await t.clock.advance(t.statuses.at(-1).delay);
  }
  assert.deepEqual(delays.map((d) => Math.round(d * 1000) / 1000), [50, 900, 0]);
  assert.equal(random.calls(), 3);
});

test("the attempt count resets once a connection stayed open for a minute", async () => {
  const t = setup({ options: { random: () => 1 - 1e-9, transports: ["websocket"] } });
  t.client.subscribe("a");
  t.ws().fail();
  await t.clock.advance(1000);
  t.ws().fail();
  await t.clock.advance(1000);
  liveWith(t, "a", 1);
  await t.clock.advance(30000);
  t.ws().serverClose(1011, "internal error"); // open 30 s: not stable yet
  assert.equal(t.statuses.at(-1).attempt, 2);
  await t.clock.advance(3000);
  liveWith(t, "a", 1);
  for (let i = 0; i < 5; i++) { // frames keep it alive past the heartbeat timeout
    await t.clock.advance(15000);
    t.ws().receive({ type: "heartbeat" });
  }
  t.ws().serverClose(1011, "internal error");
  assert.equal(t.statuses.at(-1).attempt, 0);
  assert.ok(t.statuses.at(-1).delay < 500);
});

test("1001 going away: reconnects after a jittered delay of up to 2 s at first, then resumes", async () => {
  const t = setup({ options: { random: () => 0.75 } });
  const { got } = follow(t.client, "a", { since: 0 });
  liveWith(t, "a", 2);
  t.ws().serverClose(1001, "server shutting down");
  const s = t.statuses.at(-1);
  assert.deepEqual([s.status, s.code, s.reason, s.delay], ["reconnecting", 1001,
    "server shutting down", 1500]);
  await t.clock.advance(1500);
  assert.equal(t.WebSocket.instances.length, 2);
  t.ws().fail(); // the server is still restarting: the window keeps its 2 s floor
  assert.equal(t.statuses.at(-1).delay, 1500);
  await t.clock.advance(1500);
  t.ws().open();
  assert.deepEqual(t.ws().frames(), [{ type: "subscribe", stream: "a", since: 2 }]);
  assert.deepEqual(got.seqs(), [1, 2]);
  assert.equal(t.client.transport, "websocket", "a restart is no reason to leave WebSocket");
});

test("4000 slow consumer: reconnects at once (no delay) and resumes from lastSeq", async () => {
  const t = setup();
  follow(t.client, "a", { since: 0 });
  liveWith(t, "a", 4);
  t.ws().serverClose(4000, "too slow: outgoing queue full; resume");
  assert.deepEqual([t.statuses.at(-1).status, t.statuses.at(-1).delay], ["reconnecting", 0]);
  await t.clock.advance(0);
  assert.equal(t.WebSocket.instances.length, 2);
  t.ws().open();
  assert.deepEqual(t.ws().frames(), [{ type: "subscribe", stream: "a", since: 4 }]);
});

test("4000 again soon after: backs off instead of hammering", async () => {
  const t = setup();
  follow(t.client, "a", { since: 0 });
  liveWith(t, "a", 1);
  t.ws().serverClose(4000, "slow");
  await t.clock.advance(0);
  liveWith(t, "a", 1);
  t.ws().serverClose(4000, "slow");
  assert.equal(t.statuses.at(-1).delay, 0.5 * 1000); // attempt 1: window 1 s
});

for (const [code, name] of [[4001, "unauthorized"], [1009, "message_too_big"],
  [4008, "bad_frames"], [4029, "too_many_subscriptions"], [1008, "policy violation"],
  [1003, "unsupported data"], [1002, "protocol_error"]]) {
  test(`close ${code} (${name}): no blind retry, status "closed" with the code`, async () => {
    const t = setup();
    follow(t.client, "a", { since: 0 });
    liveWith(t, "a", 1);
    t.ws().serverClose(code, name);
    assert.equal(t.client.status, "closed");
    assert.deepEqual([t.statuses.at(-1).code, t.statuses.at(-1).reason], [code, name]);
    await t.clock.advance(10 * 60 * 1000);
    t.window.dispatch("online");
    t.document.dispatch("visibilitychange");
    await t.clock.advance(1000);
    assert.equal(t.WebSocket.instances.length, 1);
    assert.equal(t.EventSource.instances.length, 0, "SSE would be refused the same way");
  });
}

test("after a no-retry close, reconnectNow() is the explicit way to try again", async () => {
  const t = setup();
  follow(t.client, "a", { since: 0 });
  liveWith(t, "a", 3);
  t.ws().serverClose(4029, "subscription limit reached");
  assert.equal(t.client.status, "closed");
  t.client.reconnectNow();
  assert.equal(t.WebSocket.instances.length, 2);
  t.ws().open();
  assert.deepEqual(t.ws().frames(), [{ type: "subscribe", stream: "a", since: 3 }]);
  assert.equal(t.client.status, "live");
});

test("4001 after an invalid_token error frame: the error reaches on('error') and status is closed", () => {
  const t = setup({ options: { token: "blt_bad", webSocketHeaders: true } });
  const errors = [];
  t.client.on("error", (e) => errors.push(e.code));
  t.client.subscribe("a");
  t.ws().open();
  t.ws().receive({ type: "error", code: "invalid_token", message: "unknown or revoked token" });
  t.ws().serverClose(4001, "credentials refused");
  assert.deepEqual(errors, ["invalid_token"]);
  assert.equal(t.client.status, "closed");
  assert.equal(t.statuses.at(-1).code, 4001);
});

test("4003 forbidden origin without SSE: status closed with the code, no retry", async () => {
  const t = setup({ options: { transports: ["websocket"] } });
  t.client.subscribe("a");
  t.ws().open();
  t.ws().serverClose(4003, "origin not allowed");
  assert.equal(t.client.status, "closed");
  assert.equal(t.statuses.at(-1).code, 4003);
  await t.clock.advance(600000);
  assert.equal(t.WebSocket.instances.length, 1);
});

test("an unrequested 1000 close backs off and reconnects (only close() is final)", async () => {
  const t = setup();
  follow(t.client, "a", { since: 0 });
  liveWith(t, "a", 1);
  t.ws().serverClose(1000, "");
  assert.equal(t.client.status, "reconnecting");
  await t.clock.advance(500);
  assert.equal(t.WebSocket.instances.length, 2);
});

test("heartbeat: any frame resets the watchdog; 40 s of silence closes and reconnects", async () => {
  const t = setup();
  follow(t.client, "a", { since: 0 });
  liveWith(t, "a", 1);
  const first = t.ws();
  for (let i = 0; i < 4; i++) {
    await t.clock.advance(15000);
    first.receive({ type: "heartbeat" });
  }
  await t.clock.advance(39999);
  assert.equal(first.closedBy, null, "not dead yet: 39.999 s of silence");
  assert.equal(t.client.status, "live");
  await t.clock.advance(1);
  assert.notEqual(first.closedBy, null, "closed after 40 s without any frame");
  assert.deepEqual([t.statuses.at(-1).status, t.statuses.at(-1).reason],
    ["reconnecting", "heartbeat timeout"]);
  await t.clock.advance(t.statuses.at(-1).delay);
  assert.equal(t.WebSocket.instances.length, 2);
  t.ws().open();
  assert.deepEqual(t.ws().frames(), [{ type: "subscribe", stream: "a", since: 1 }]);
});

test("heartbeat timeout is configurable and any frame (not only heartbeats) counts", async () => {
  const t = setup({ options: { heartbeatTimeout: 1000 } });
  follow(t.client, "a", { since: 0 });
  t.ws().open();
  await t.clock.advance(900);
  t.ws().receive({ type: "subscribed", stream: "a", seq: 0 });
  await t.clock.advance(900);
  t.ws().receive(ev("a", 1));
  await t.clock.advance(999);
  assert.equal(t.ws().closedBy, null);
  await t.clock.advance(1);
  assert.notEqual(t.ws().closedBy, null);
});

test("a socket that never opens keeps the watchdog off and backs off on its failure", async () => {
  const t = setup({ options: { transports: ["websocket"] } });
  t.client.subscribe("a");
  await t.clock.advance(120000);
  assert.equal(t.WebSocket.instances.length, 1, "the open is still pending: no timer fired");
  t.ws().fail();
  assert.equal(t.client.status, "reconnecting");
});

test("hidden tab: nothing is paused or closed; shown again: reconnects at once (no back-off wait)", async () => {
  const t = setup({ options: { random: () => 0.99, transports: ["websocket"] } });
  follow(t.client, "a", { since: 0 });
  liveWith(t, "a", 2);
  t.document.visibilityState = "hidden";
  t.document.dispatch("visibilitychange");
  await t.clock.advance(20000);
  t.ws().receive({ type: "heartbeat" });
  assert.equal(t.ws().closedBy, null);
  assert.equal(t.client.status, "live");
  for (let i = 0; i < 4; i++) {
    t.ws().fail();
    await t.clock.advance(t.statuses.at(-1).delay);
  }
  t.ws().fail();
  const waiting = t.statuses.at(-1).delay;
  assert.ok(waiting > 7000, `long back-off now (${waiting})`);
  const count = t.WebSocket.instances.length;
  t.document.visibilityState = "visible";
  t.document.dispatch("visibilitychange");
  assert.equal(t.WebSocket.instances.length, count + 1, "connected at once");
  t.ws().open();
  assert.deepEqual(t.ws().frames(), [{ type: "subscribe", stream: "a", since: 2 }]);
  await t.clock.advance(waiting);
  assert.equal(t.WebSocket.instances.length, count + 1, "the cancelled timer does not fire");
});

test("shown again after timers were throttled: a socket silent past the timeout is replaced now", () => {
  const t = setup();
  follow(t.client, "a", { since: 0 });
  liveWith(t, "a", 5);
  const first = t.ws();
  t.document.visibilityState = "hidden";
  t.document.dispatch("visibilitychange");
  t.clock.jump(10 * 60 * 1000); // the tab slept: no timer ran
  t.document.visibilityState = "visible";
  t.document.dispatch("visibilitychange");
  assert.notEqual(first.closedBy, null);
  assert.equal(t.WebSocket.instances.length, 2);
  assert.deepEqual([t.statuses.at(-1).status, t.statuses.at(-1).delay], ["reconnecting", 0]);
  t.ws().open();
  assert.deepEqual(t.ws().frames(), [{ type: "subscribe", stream: "a", since: 5 }]);
});

test("shown again with a healthy socket: nothing happens", () => {
  const t = setup();
  follow(t.client, "a", { since: 0 });
  liveWith(t, "a", 1);
  t.clock.jump(5000);
  t.document.dispatch("visibilitychange");
  assert.equal(t.WebSocket.instances.length, 1);
  assert.equal(t.ws().closedBy, null);
});

test("offline: status 'offline', no retries burnt; online: reconnects at once with attempt reset", async () => {
  const t = setup({ options: { random: () => 0.5 } });
  follow(t.client, "a", { since: 0 });
  liveWith(t, "a", 3);
  t.window.navigator.onLine = false;
  t.window.dispatch("offline");
  assert.equal(t.client.status, "offline");
  t.ws().fail();
  assert.equal(t.client.status, "offline");
  await t.clock.advance(10 * 60 * 1000);
  assert.equal(t.WebSocket.instances.length, 1, "no attempts while offline");
  t.window.navigator.onLine = true;
  t.window.dispatch("online");
  assert.equal(t.WebSocket.instances.length, 2);
  assert.equal(t.client.status, "reconnecting");
  t.ws().open();
  assert.equal(t.client.status, "live");
  assert.deepEqual(t.ws().frames(), [{ type: "subscribe", stream: "a", since: 3 }]);
  t.ws().fail();
  assert.equal(t.statuses.at(-1).attempt, 0);
});

test("offline cancels a pending back-off timer", async () => {
  const t = setup();
  t.client.subscribe("a");
  t.ws().fail();
  assert.equal(t.client.status, "reconnecting");
  t.window.dispatch("offline");
  await t.clock.advance(60000);
  assert.equal(t.WebSocket.instances.length, 1);
  assert.equal(t.client.status, "offline");
});

test("a frame on a socket while 'offline' proves we are online: status back to live", () => {
  const t = setup();
  follow(t.client, "a", { since: 0 });
  liveWith(t, "a", 1);
  t.window.dispatch("offline");
  assert.equal(t.client.status, "offline");
  t.ws().receive({ type: "heartbeat" });
  assert.equal(t.client.status, "live");
});

test("starts offline when navigator.onLine is false, and connects on 'online'", () => {
  const t = setup();
  t.window.navigator.onLine = false;
  const t2 = setup({ options: { window: t.window } });
  t2.client.subscribe("a");
  assert.equal(t2.client.status, "offline");
  assert.equal(t2.WebSocket.instances.length, 0);
  t.window.dispatch("online");
  assert.equal(t2.WebSocket.instances.length, 1);
});

test("reconnectNow() skips the back-off wait", async () => {
  const t = setup({ options: { random: () => 0.99 } });
  follow(t.client, "a", { since: 0 });
  liveWith(t, "a", 1);
  t.ws().serverClose(1011, "internal error");
  assert.equal(t.WebSocket.instances.length, 1);
  t.client.reconnectNow();
  assert.equal(t.WebSocket.instances.length, 2);
  await t.clock.advance(60000);
  assert.equal(t.WebSocket.instances.length, 2, "the back-off timer was cancelled");
  t.client.reconnectNow(); // still connecting: no second socket
  assert.equal(t.WebSocket.instances.length, 2);
});

test("status goes connecting -> live -> reconnecting -> live with transport and attempt details", async () => {
  const t = setup();
  t.client.subscribe("a");
  assert.equal(t.client.status, "connecting");
  t.ws().open();
  t.ws().fail();
  await t.clock.advance(250);
  t.ws().open();
  assert.deepEqual(t.statuses.map((s) => [s.status, s.transport, s.attempt]), [
    ["live", "websocket", 0], ["reconnecting", "websocket", 0], ["live", "websocket", 1],
  ]);
});
