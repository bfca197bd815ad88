// The compose draft on the server as well as in this browser, so that the editor finds it
// on another device (PUT/GET/DELETE /api/streams/{slug}/draft: docs/api.md, "Drafts").
// editor.js keeps the draft in localStorage at once and tells this module of every
// change; it is saved to the server a moment after typing stops, and at once when the
// page is hidden. A failed save is retried quietly: the text is in localStorage meanwhile.
//
// Two devices stay in step by the draft's version: each save names the version it was
// made from (`base`), and the server refuses one made from an older version (412) and
// keeps the newer draft. The desk then says so and lets the editor choose; it never
// overwrites the other device's draft silently, and never drops the text on the screen.

import { csrf, newKey } from "./desk_common.js";
import { smallest } from "./desk_photos.js";

/**
 * @typedef {import("./editor.js").Draft} Draft
 * @typedef {import("./article.js").Photo} Photo
 * @typedef {{stream: string, body: string, pinned: boolean, headline: string,
 *   tags: string[], contributors: number[], media: Photo[], uploading: string[],
 *   key: string, version: number, updated_at: string}} ServerCopy the API's draft
 * @typedef {{apply: (draft: Draft | null) => void, rekey: () => void}} ComposeHooks
 *   apply: put this draft in the compose form (null: empty it); rekey: give the draft
 *   in the form a new idempotency key (its old one has published a post)
 */

export const SAVE_DELAY_MS = 1500;
// Quiet retries after a failed save: soon at first, then every half minute.
const RETRY_MS = [2000, 5000, 15000, 30000];

/**
 * What the server keeps of a draft (the photos by reference, those still uploading by
 * name), as a canonical JSON string: two drafts are the same when these are equal.
 * @param {Draft | null} draft
 * @returns {string}
 */
export function content(draft) {
  if (!draft) return "null";
  const photos = draft.photos ?? [];
  return JSON.stringify({
    body: draft.body, pinned: draft.pinned, key: draft.key,
    headline: draft.fields?.headline ?? "", tags: draft.fields?.tags ?? [],
    contributors: draft.fields?.contributors ?? [],
    media: photos.flatMap((p) => (p.media ? [{ id: p.media.id, alt: p.alt.trim(),
      caption: p.caption.trim(), credit: p.credit.trim() }] : [])),
    uploading: photos.filter((p) => !p.media).map((p) => (p.name || "photo").slice(0, 200)),
  });
}

/**
 * The server's draft as the compose form keeps one.
 * @param {ServerCopy} copy
 * @returns {Draft}
 */
export function fromServer(copy) {
  return {
    body: copy.body, pinned: copy.pinned, key: copy.key,
    photos: copy.media.map((m) => ({ local: newKey(), key: newKey(), name: "", alt: m.alt,
      caption: m.caption, credit: m.credit, thumb: smallest(m).url, media: m })),
    fields: { headline: copy.headline, tags: copy.tags, contributors: copy.contributors },
  };
}

/**
 * What to say about photos that only the other device has.
 * @param {string[]} names
 */
function uploadingElsewhere(names) {
  if (!names.length) return "";
  const one = names.length === 1;
  return ` ${one ? `“${names[0]}” was` : `${names.length} photos were`} still uploading ` +
    `on the other device and ${one ? "is" : "are"} only there: attach ${one ? "it" : "them"} ` +
    "again here, or post from there.";
}

/** The compose form's draft on the server, for one stream. */
export class ServerDraft {
  /**
   * @param {string} slug
   * @param {HTMLElement} status the compose form's status line
   * @param {ComposeHooks} hooks
   */
  constructor(slug, status, hooks) {
    this.url = `/api/streams/${encodeURIComponent(slug)}/draft`;
    this.name = `bulletin:draft-sync:${slug}`;
    this.status = status;
    this.hooks = hooks;
    // Where the server's copy stands, as far as this browser knows: its version (null:
    // none) and the content that version holds.
    /** @type {{version: number | null, saved: string}} */
    this.synced = this.loadSynced();
    /** @type {Draft | null | undefined} the draft to save; undefined: nothing to save */
    this.pending = undefined;
    /** @type {Draft | null} the draft in the form, as last told */
    this.latest = null;
    this.ready = false;
    this.sending = false;
    this.timer = 0;
    this.failures = 0;
    // A refused save ("too long", a bad tag) is not sent again until the draft changes.
    this.refused = "";
    /** @type {ServerCopy | null | undefined} the newer copy, while the editor chooses */
    this.conflict = undefined;
    this.note = document.createElement("div");
    this.note.className = "draft-sync";
    this.note.hidden = true;
    status.after(this.note);
    window.addEventListener("pagehide", () => this.flush(true));
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") this.flush(true);
    });
    window.addEventListener("online", () => this.flush(false));
  }

  /** @returns {{version: number | null, saved: string}} */
  loadSynced() {
    try {
      const raw = JSON.parse(localStorage.getItem(this.name) ?? "null");
      if (raw && (raw.version === null || Number.isInteger(raw.version)) &&
          typeof raw.saved === "string") return raw;
    } catch { /* storage off or spoilt: start over */ }
    return { version: null, saved: "null" };
  }

  /**
   * @param {number | null} version
   * @param {string} saved
   */
  setSynced(version, saved) {
    this.synced = { version, saved };
    try { localStorage.setItem(this.name, JSON.stringify(this.synced)); } catch { /* off */ }
  }

  /**
   * On opening the page: compare the server's copy with the draft in the form (the one
   * this browser kept), and restore the server's when it is newer.
   * @param {Draft | null} local
   * @param {boolean} exists whether the page says there is a copy on the server (when
   *   there is none, asking would only be answered 404)
   */
  async start(local, exists) {
    this.latest = local;
    let copy = null;
    while (exists) {
      try {
        const response = await this.send("GET");
        if (response.status === 404) break;
        if (response.ok) {
          copy = /** @type {ServerCopy} */ (await response.json());
          break;
        }
      } catch { /* the network: try again */ }
      await new Promise((resolve) => setTimeout(resolve, this.backoff()));
    }
    this.failures = 0;
    local = this.latest;
    const mine = content(local);
    const clean = mine === this.synced.saved;
    if (copy === null) {
      if (mine !== "null" && clean && this.synced.version !== null) {
        // Saved here, then posted or thrown away on another device.
        this.setSynced(null, "null");
        this.hooks.apply(null);
        this.status.textContent = "Your draft was posted or deleted on another device.";
      } else {
        this.setSynced(null, "null");
        if (mine !== "null") this.pending = local;
      }
    } else {
      const theirs = content(fromServer(copy));
      if (mine === theirs) {
        this.setSynced(copy.version, theirs);
      } else if (mine === "null" || (clean && this.synced.version !== copy.version)) {
        this.restore(copy, "Your draft from another device was restored.");
      } else if (this.synced.version === copy.version) {
        this.pending = local;
      } else {
        this.showConflict(copy);
      }
    }
    this.ready = true;
    this.schedule(0);
  }

  /**
   * Put the server's copy in the form.
   * @param {ServerCopy} copy
   * @param {string} text what to tell the editor
   */
  restore(copy, text) {
    const draft = fromServer(copy);
    this.setSynced(copy.version, content(draft));
    this.pending = undefined;
    this.hooks.apply(draft);
    const n = copy.media.length;
    this.status.textContent = text.replace(/\.$/, n ? `, with ${n === 1 ? "its photo" :
      `its ${n} photos`}.` : ".") + uploadingElsewhere(copy.uploading);
  }

  /**
   * The draft in the form changed (null: it is empty now).
   * @param {Draft | null} draft
   */
  changed(draft) {
    this.latest = draft;
    const now = content(draft);
    if (now === this.refused) return;
    this.refused = "";
    this.pending = now === this.synced.saved ? undefined : draft;
    if (this.pending !== undefined) this.schedule(SAVE_DELAY_MS);
  }

  /** The draft was published from here: the server deleted it with the post. */
  posted() {
    clearTimeout(this.timer);
    this.pending = undefined;
    this.refused = "";
    this.hideConflict();
    this.setSynced(null, "null");
  }

  /** @param {number} delay */
  schedule(delay) {
    clearTimeout(this.timer);
    if (this.pending === undefined || !this.ready || this.conflict !== undefined) return;
    this.timer = window.setTimeout(() => this.flush(false), delay);
  }

  backoff() {
    const delay = RETRY_MS[Math.min(this.failures, RETRY_MS.length - 1)] ?? 30000;
    this.failures += 1;
    return delay;
  }

  /**
   * @param {"GET" | "PUT" | "DELETE"} method
   * @param {unknown} [body]
   * @param {boolean} [keepalive] the page is going away: let the request outlive it
   */
  send(method, body, keepalive = false) {
    return fetch(this.url, {
      method, credentials: "same-origin", keepalive,
      headers: { "Content-Type": "application/json", Accept: "application/json",
                 "X-CSRF-Token": csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  /**
   * Save what is pending now.
   * @param {boolean} leaving the page is being hidden or closed
   */
  async flush(leaving) {
    // One save at a time: two at once would both name the same base, and the second
    // would be refused as if another device had saved. (The page going away meanwhile
    // leaves the newest change in localStorage: the next visit saves it.)
    if (this.pending === undefined || !this.ready || this.conflict !== undefined ||
        this.sending) return;
    clearTimeout(this.timer);
    const draft = this.pending;
    const sent = content(draft);
    this.pending = undefined;
    this.sending = true;
    let retry = false;
    try {
      const response = draft === null ? await this.send("DELETE", undefined, leaving)
        : await this.send("PUT", { ...JSON.parse(sent), base: this.synced.version }, leaving);
      const data = response.status === 204 ? null : await response.json().catch(() => null);
      const code = data?.error?.code;
      if (response.ok) {
        this.failures = 0;
        this.setSynced(draft === null ? null : data.version, sent);
        this.showNote("");
      } else if (response.status === 412 && code === "draft_changed") {
        /** @type {ServerCopy | null} */
        const copy = data.error.details?.draft ?? null;
        if (copy && content(fromServer(copy)) === sent) {
          // The other device saved just what this one has.
          this.setSynced(copy.version, sent);
        } else {
          this.showConflict(copy);
        }
      } else if (response.status === 409 && code === "draft_posted") {
        // Posted already (from another device, or from here with the answer lost): what
        // is in the form now is a new draft, with a key of its own.
        this.setSynced(null, "null");
        if (this.pending === undefined || content(this.pending) === sent) {
          this.status.textContent = "This draft was already posted (see the list); what " +
            "is here is kept as a new draft.";
          this.hooks.rekey();
        }
      } else if (response.status >= 400 && response.status < 500 &&
                 ![401, 403, 408, 429].includes(response.status)) {
        this.refused = sent;
        this.showNote(`Kept in this browser only, not for your other devices: ${
          String(data?.error?.message ?? `HTTP ${response.status}`)}.`);
      } else {
        retry = true;
      }
    } catch {
      retry = true;
    } finally {
      this.sending = false;
    }
    if (retry) {
      this.pending = this.pending ?? draft;
      this.schedule(this.backoff());
    } else {
      this.schedule(SAVE_DELAY_MS);
    }
  }

  /** @param {string} text */
  showNote(text) {
    if (this.conflict !== undefined) return;
    this.note.className = "draft-sync hint";
    this.note.textContent = text;
    this.note.hidden = !text;
  }

  /**
   * The server kept a newer draft (or none: it was posted or deleted elsewhere) than the
   * one in the form: say so, and let the editor choose.
   * @param {ServerCopy | null} copy
   */
  showConflict(copy) {
    clearTimeout(this.timer);
    this.conflict = copy;
    this.note.className = "draft-sync notice";
    this.note.setAttribute("role", "alert");
    const text = document.createElement("p");
    text.textContent = copy
      ? "A newer draft from another device was kept. The text here is unchanged, and " +
        "kept in this browser."
      : "This draft was posted or deleted on another device. The text here is unchanged, " +
        "and kept in this browser.";
    const take = document.createElement("button");
    take.type = "button";
    take.textContent = copy ? "Use the newer draft" : "Clear this draft";
    take.addEventListener("click", () => {
      this.hideConflict();
      if (copy) {
        this.restore(copy, "The draft from your other device is here.");
      } else {
        this.setSynced(null, "null");
        this.pending = undefined;
        this.hooks.apply(null);
        this.status.textContent = "Draft cleared.";
      }
    });
    const keep = document.createElement("button");
    keep.type = "button";
    keep.textContent = copy ? "Keep this one instead" : "Keep this one";
    keep.addEventListener("click", () => {
      this.hideConflict();
      // Saved over the newer copy, now that the editor has seen it.
      this.setSynced(copy ? copy.version : null, copy ? "" : "null");
      this.pending = this.latest;
      this.status.textContent = "";
      this.schedule(0);
    });
    const buttons = document.createElement("p");
    buttons.className = "draft-sync-buttons";
    buttons.append(take, " ", keep);
    this.note.replaceChildren(text, buttons);
    this.note.hidden = false;
  }

  hideConflict() {
    this.conflict = undefined;
    this.note.removeAttribute("role");
    this.note.replaceChildren();
    this.note.hidden = true;
  }
}
