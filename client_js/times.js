// Times in the reader's own time zone, with relative wording ("3 minutes ago").
//
// The server writes every time as <time datetime="…Z"> in UTC with a UTC label, so the
// page is right without JavaScript. Here each is shown in the zone the reader's device
// uses. Intl resolves the zone's offset for each instant on its own, so times on either
// side of a daylight-saving change are both right.

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * @typedef {object} TimeOptions
 * @property {string} [locale] BCP 47 locale; the browser's by default
 * @property {string} [timeZone] IANA zone; the device's by default
 */

/**
 * The wall-clock time, with the date when it is not today: "18:04", "24 Nov, 18:04".
 * @param {Date} date
 * @param {Date} now
 * @param {TimeOptions} [options]
 * @returns {string}
 */
export function formatClock(date, now, options = {}) {
  const { locale, timeZone } = options;
  const time = new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit", timeZone });
  if (dayKey(date, options) === dayKey(now, options)) return time.format(date);
  const sameYear = yearOf(date, options) === yearOf(now, options);
  const full = new Intl.DateTimeFormat(locale, {
    day: "numeric", month: "short", year: sameYear ? undefined : "numeric",
    hour: "2-digit", minute: "2-digit", timeZone,
  });
  return full.format(date);
}

/**
 * How long ago, in words: "now", "3 minutes ago", "2 hours ago", "yesterday".
 * Returns "" for times more than two days old, where the clock alone says more.
 * @param {Date} date
 * @param {Date} now
 * @param {TimeOptions} [options]
 * @returns {string}
 */
export function formatRelative(date, now, options = {}) {
  const ago = now.getTime() - date.getTime();
  const words = new Intl.RelativeTimeFormat(options.locale, { numeric: "auto", style: "long" });
  if (ago < 45_000) return words.format(0, "second"); // "now"
  if (ago < 45 * MINUTE) return words.format(-Math.max(1, Math.round(ago / MINUTE)), "minute");
  if (ago < 20 * HOUR) return words.format(-Math.max(1, Math.round(ago / HOUR)), "hour");
  if (ago < 2 * DAY) return words.format(-1, "day");
  return "";
}

/**
 * The full date and time with the zone's name, for a tooltip.
 * @param {Date} date
 * @param {TimeOptions} [options]
 * @returns {string}
 */
export function formatFull(date, options = {}) {
  return new Intl.DateTimeFormat(options.locale, {
    dateStyle: "full", timeStyle: "long", timeZone: options.timeZone,
  }).format(date);
}

/**
 * Show every <time datetime> under `root` in the reader's zone. Times inside a
 * `.post-time` link also say how long ago they were.
 * @param {ParentNode} root
 * @param {Date} [now]
 * @param {TimeOptions} [options]
 */
export function localiseTimes(root, now = new Date(), options = {}) {
  for (const element of root.querySelectorAll("time[datetime]")) {
    const value = element.getAttribute("datetime") ?? "";
    // A date alone (a card's "5 May 2014") is no instant: there is no zone to show it in.
    if (!value.includes("T")) continue;
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) continue;
    const clock = formatClock(date, now, options);
    const relative = element.closest(".post-time") ? formatRelative(date, now, options) : "";
    const text = relative ? `${clock} · ${relative}` : clock;
    if (element.textContent !== text) element.textContent = text;
    element.setAttribute("title", formatFull(date, options));
  }
}

/**
 * Localise now, then again every `everyMs` so that "3 minutes ago" stays true.
 * @param {ParentNode} root
 * @param {number} [everyMs]
 * @returns {() => void} stops the updates
 */
export function keepTimesCurrent(root, everyMs = 30_000) {
  localiseTimes(root);
  const timer = setInterval(() => localiseTimes(root), everyMs);
  return () => clearInterval(timer);
}

/**
 * @param {Date} date
 * @param {TimeOptions} options
 */
function dayKey(date, options) {
  return new Intl.DateTimeFormat("en-CA", {
    year: "numeric", month: "2-digit", day: "2-digit", timeZone: options.timeZone,
  }).format(date);
}

/**
 * @param {Date} date
 * @param {TimeOptions} options
 */
function yearOf(date, options) {
  return new Intl.DateTimeFormat("en", { year: "numeric", timeZone: options.timeZone }).format(date);
}
