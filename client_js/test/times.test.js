// Times in the reader's zone: the clock, the relative wording, and daylight-saving changes.
import { test } from "node:test";
import assert from "node:assert/strict";

import { formatClock, formatRelative, formatFull } from "../times.js";

const NY = { locale: "en-GB", timeZone: "America/New_York" };

test("the clock is the instant in the reader's zone", () => {
  const date = new Date("2026-06-01T16:04:00Z");
  assert.equal(formatClock(date, date, { locale: "en-GB", timeZone: "Europe/London" }), "17:04");
  assert.equal(formatClock(date, date, { locale: "en-GB", timeZone: "Asia/Kathmandu" }), "21:49");
  assert.equal(formatClock(date, date, { locale: "en-GB", timeZone: "UTC" }), "16:04");
});

test("both sides of a daylight-saving change are right", () => {
  // New York falls back on 1 November 2026 at 02:00 EDT: 05:30Z and 06:30Z are both 01:30.
  const edt = new Date("2026-11-01T05:30:00Z");
  const est = new Date("2026-11-01T06:30:00Z");
  assert.equal(formatClock(edt, edt, NY), "01:30");
  assert.equal(formatClock(est, est, NY), "01:30");
  assert.match(formatFull(edt, NY), /EDT|GMT-4/);
  assert.match(formatFull(est, NY), /EST|GMT-5/);
  // Spring forward on 8 March 2026: 06:59Z is 01:59 EST, 07:00Z is 03:00 EDT.
  const before = new Date("2026-03-08T06:59:00Z");
  const after = new Date("2026-03-08T07:00:00Z");
  assert.equal(formatClock(before, before, NY), "01:59");
  assert.equal(formatClock(after, after, NY), "03:00");
});

test("the date is added when the time is not today in the reader's zone", () => {
  const now = new Date("2026-11-25T03:00:00Z"); // 22:00 on the 24th in New York
  assert.equal(formatClock(new Date("2026-11-25T01:00:00Z"), now, NY), "20:00");
  assert.equal(formatClock(new Date("2026-11-24T01:00:00Z"), now, NY), "23 Nov, 20:00");
  assert.equal(formatClock(new Date("2025-11-24T01:00:00Z"), now, NY), "23 Nov 2025, 20:00");
});

test("relative wording: now, minutes, hours, yesterday, then nothing", () => {
  const now = new Date("2026-11-25T12:00:00Z");
  const ago = (ms) => formatRelative(new Date(now.getTime() - ms), now, { locale: "en" });
  assert.equal(ago(10_000), "now");
  assert.equal(ago(3 * 60_000), "3 minutes ago");
  assert.equal(ago(60_000), "1 minute ago");
  assert.equal(ago(2 * 3_600_000), "2 hours ago");
  assert.equal(ago(30 * 3_600_000), "yesterday");
  assert.equal(ago(5 * 86_400_000), "");
});
