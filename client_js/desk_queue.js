// The desk's posts that wait: "Awaiting approval" (a contributor's own: "Your posts
// awaiting approval") and "Upcoming" scheduled posts, above the stream's published posts.
// Every action in them is a plain form (see docs/editor.md); this module turns the
// datetime-local fields, which have no time zone, into the editor's own time (shown in
// it, sent as UTC), and keeps the lists current: after a post that waits is sent from
// the compose form, when the server says the stream's posts that wait changed (a `queue`
// frame: another editor's or a contributor's post submitted, approved, sent back,
// rescheduled or cancelled, here or on another device), and when a post in them arrives
// published, the lists are read again from the server, which renders them. Changes that
// come together (a post.created and its queue frame) are read once.

import { byId } from "./desk_common.js";
import { localiseTimes } from "./times.js";

/**
 * @typedef {{id: number, status?: string, publish_at?: string | null}} QueuedPost
 */

/**
 * A datetime-local value ("2026-12-04T20:00", the editor's own time) as UTC ISO 8601;
 * "" when it is empty or not a time.
 * @param {string} value
 * @returns {string}
 */
export function localToUtc(value) {
  if (!value) return "";
  // Date reads a date-time without a zone as local time.
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString();
}

/**
 * A UTC time as the value of a datetime-local field in the editor's own time.
 * @param {string} iso
 * @returns {string}
 */
export function utcToLocal(iso) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) return "";
  const pad = (/** @type {number} */ n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** The editor's time zone, as a hint beside each time field. */
function zoneText() {
  const minutes = -new Date().getTimezoneOffset();
  const sign = minutes < 0 ? "−" : "+";
  const hours = Math.floor(Math.abs(minutes) / 60);
  const rest = Math.abs(minutes) % 60;
  const offset = minutes === 0 ? "UTC" : `UTC${sign}${hours}${rest ? `:${String(rest).padStart(2, "0")}` : ""}`;
  return `(your time, ${offset})`;
}

/**
 * Show a container's time fields in the editor's time, and send them as UTC: the form's
 * hidden ``publish_at`` gets the UTC time as it is submitted.
 * @param {ParentNode} root
 */
function enhanceTimes(root) {
  for (const hint of root.querySelectorAll("[data-zone-hint]")) hint.textContent = zoneText();
  for (const input of /** @type {NodeListOf<HTMLInputElement>} */ (
    root.querySelectorAll("input[data-utc]"))) {
    input.value = utcToLocal(input.dataset.utc ?? "") || input.value;
  }
  for (const form of /** @type {NodeListOf<HTMLFormElement>} */ (
    root.querySelectorAll("form[data-local-time]"))) {
    form.addEventListener("submit", () => {
      const local = /** @type {HTMLInputElement | null} */ (form.elements.namedItem("publish_at_local"));
      const utc = /** @type {HTMLInputElement | null} */ (form.elements.namedItem("publish_at"));
      if (local && utc) utc.value = localToUtc(local.value);
    });
  }
}

/**
 * Mark the fields of the lists that the editor types in (a note, a new time), so that a
 * fresh copy of the lists can keep what they typed.
 * @param {HTMLElement} root
 */
function watchTyping(root) {
  root.addEventListener("input", (event) => {
    const field = event.target;
    if (field instanceof HTMLElement) field.dataset.typed = "1";
  });
}

/**
 * Keep in the fresh lists what the editor was doing in the old ones: the text of every
 * field they typed in and each open "Send back…" of a post still listed. A post that is
 * gone (another editor approved it) takes its half-written note with it.
 * @param {HTMLElement} old
 * @param {HTMLElement} fresh
 */
function carryOver(old, fresh) {
  for (const field of /** @type {NodeListOf<HTMLInputElement | HTMLTextAreaElement>} */ (
    old.querySelectorAll("[data-typed]"))) {
    const twin = field.id ? fresh.querySelector(`#${CSS.escape(field.id)}`) : null;
    if (twin instanceof HTMLInputElement || twin instanceof HTMLTextAreaElement) {
      twin.value = field.value;
      twin.dataset.typed = "1";
    }
  }
  for (const details of old.querySelectorAll("details[open]")) {
    const item = details.closest(".queue-item");
    const twin = item?.id ? fresh.querySelector(`#${CSS.escape(item.id)} details`) : null;
    if (twin instanceof HTMLDetailsElement) twin.open = true;
  }
}

/**
 * Give the focus back to the same field in the fresh lists, caret and all.
 * @param {HTMLElement} active the element that had the focus in the old lists
 * @param {HTMLElement} fresh
 */
function refocus(active, fresh) {
  if (!active.id) return;
  const twin = fresh.querySelector(`#${CSS.escape(active.id)}`);
  if (!(twin instanceof HTMLElement)) return;
  twin.focus();
  if ((active instanceof HTMLTextAreaElement || active instanceof HTMLInputElement) &&
      twin instanceof HTMLTextAreaElement && active.selectionStart !== null) {
    twin.setSelectionRange(active.selectionStart, active.selectionEnd);
  }
}

/** The stream page's lists of posts that wait, and the compose form's "Schedule…". */
export class DeskQueue {
  /** @param {Document} doc */
  constructor(doc) {
    this.root = byId("queue");
    this.when = /** @type {HTMLInputElement | null} */ (byId("compose-when"));
    this.submit = byId("compose-submit");
    // With a time set, the compose button says what it will do.
    this.when?.addEventListener("input", () => this.label());
    this.label();
    this.refreshing = false;
    this.again = false;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.soon = null;
    enhanceTimes(doc);
    if (this.root) watchTyping(this.root);
  }

  /** The compose button: "Schedule" while a time is set, else "Post". */
  label() {
    if (this.submit && this.when) this.submit.textContent = this.when.value ? "Schedule" : "Post";
  }

  /**
   * What the compose form adds to its post: the time it should go out, if one is set.
   * @returns {{publish_at?: string}}
   */
  fields() {
    const utc = localToUtc(this.when?.value ?? "");
    return utc ? { publish_at: utc } : {};
  }

  /**
   * The compose form's post was accepted: clear its time, and when the post waits
   * (scheduled, or sent for approval) list it here. Returns what to tell the editor
   * then, or null for a published post (which the post list shows).
   * @param {QueuedPost} post
   * @returns {string | null}
   */
  accepted(post) {
    if (this.when) this.when.value = "";
    this.label();
    const details = byId("compose-schedule");
    if (details instanceof HTMLDetailsElement) details.open = false;
    if (!post.status || post.status === "published") return null;
    this.refresh();
    if (post.status === "scheduled" && post.publish_at) {
      return `Scheduled for ${new Date(post.publish_at).toLocaleString([],
        { dateStyle: "medium", timeStyle: "short" })}.`;
    }
    return "Sent to the desk for approval.";
  }

  /**
   * A post arrived live: when it is one of the posts listed here, it has been published
   * (or changed): read the lists again.
   * @param {{id: number}} post
   */
  seen(post) {
    if (this.root?.querySelector(`[data-id="${post.id}"]`)) this.refresh();
  }

  /** Read the lists again from the server's page of this stream, shortly: the changes
   * that arrive within 100 ms are read once. */
  refresh() {
    if (!this.root || this.soon !== null) return;
    this.soon = setTimeout(() => {
      this.soon = null;
      this.read();
    }, 100);
  }

  /** @private */
  async read() {
    if (!this.root) return;
    if (this.refreshing) {
      this.again = true;  // a change during the read: read once more after it
      return;
    }
    this.refreshing = true;
    this.again = false;
    try {
      const response = await fetch(location.pathname, { credentials: "same-origin",
        headers: { Accept: "text/html" } });
      if (!response.ok) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("queue");
      if (!fresh || !this.root) return;
      const adopted = /** @type {HTMLElement} */ (document.importNode(fresh, true));
      localiseTimes(adopted);
      enhanceTimes(adopted);
      const old = this.root;
      const active = document.activeElement;
      carryOver(old, adopted);
      old.replaceWith(adopted);
      if (active instanceof HTMLElement && old.contains(active)) refocus(active, adopted);
      watchTyping(adopted);
      this.root = adopted;
    } catch { /* the lists stay as they were until the next change or reload */ } finally {
      this.refreshing = false;
      if (this.again) this.read();
    }
  }
}
