// The photos of a post being written or edited on the desk: picked, dropped or pasted,
// each uploaded at once (a few at a time, with one Idempotency-Key for all its retries),
// kept with the draft, drawn as readers will see them, and waited for before the post
// goes out. Each photo is an Attachment (desk_attachment.js); the upload and the files
// kept in IndexedDB are in desk_uploads.js.

import { Attachment } from "./desk_attachment.js";
import { announce, byId, NETWORK_FAILURE, newKey } from "./desk_common.js";
import { PERMANENT_REFUSALS, thumbnail, uploadFailureText, uploadPhoto } from "./desk_uploads.js";
import { photoFigure } from "./article.js";

/**
 * @typedef {import("./article.js").Photo} Photo
 * @typedef {import("./desk_attachment.js").StoredPhoto} StoredPhoto
 * @typedef {import("./desk_uploads.js").PendingFiles} PendingFiles
 */

const MAX_PHOTOS = 20; // the server's limit per post (MAX_POST_MEDIA)
// Two at a time: on a phone's uplink the first photos finish sooner than if all shared
// it, and the server processes two at a time anyway (BULLETIN_MEDIA_WORKERS).
const UPLOADS_AT_ONCE = 2;

/**
 * The smallest of an uploaded photo's files: its thumbnail.
 * @param {Photo} photo
 * @returns {{width: number, height: number, url: string}}
 */
export function smallest(photo) {
  return photo.variants.reduce((best, v) => (v.width < best.width ? v : best));
}

/**
 * Whether the browser says a file is a photo the server may take (HEIC often comes with
 * no type at all, so its extension counts). SVG is refused here as there: it can carry
 * script.
 * @param {File} file
 */
function isPhoto(file) {
  if (file.type === "image/svg+xml") return false;
  return file.type.startsWith("image/") || /\.(heic|heif)$/i.test(file.name);
}

/** @type {string[]} what announcePhotos has yet to say */
const photoNews = [];
let photoNewsTimer = 0;

/**
 * Say something about photos in the page's polite live region (the compose form's own,
 * else the flash region). Cleared first, so that the same words twice are said twice;
 * what comes together (two uploads ending at once) is said together, not the last only.
 * @param {string} text
 */
function announcePhotos(text) {
  const region = byId("photo-announcer");
  if (!region) {
    announce(text);
    return;
  }
  photoNews.push(text);
  region.textContent = "";
  clearTimeout(photoNewsTimer);
  photoNewsTimer = window.setTimeout(() => {
    region.textContent = photoNews.splice(0).join(" ");
  }, 150);
}

/**
 * The photos of a post being written or edited: the controls to add them (a button for
 * the file picker, which on a phone offers the camera; dropping on `dropTarget`; pasting
 * into it), a row per photo with its thumbnail, upload progress, alt text, caption and
 * credit, Retry and Remove, and the uploads themselves.
 */
export class PhotoTray {
  /**
   * @param {HTMLElement} mount filled with the controls
   * @param {{prefix: string, dropTarget: HTMLElement, onChange: () => void, slug: string,
   *          pending?: PendingFiles | null}} options
   */
  constructor(mount, options) {
    this.prefix = options.prefix;
    this.onChange = options.onChange;
    this.pending = options.pending ?? null;
    this.slug = options.slug;
    /** @type {Attachment[]} */
    this.items = [];
    /** @type {(() => void)[]} */
    this.waiters = [];
    this.locked = false;
    // The photos of a post being edited, until the API has said what they are.
    this.loading = false;
    this.stop = new AbortController();
    const signal = this.stop.signal;

    const pick = document.createElement("div");
    pick.className = "attach-pick";
    this.addButton = document.createElement("button");
    this.addButton.type = "button";
    this.addButton.className = "attach-add";
    this.addButton.textContent = "Add photos";
    this.input = document.createElement("input");
    this.input.type = "file";
    this.input.accept = "image/*";
    this.input.multiple = true;
    this.input.id = `${this.prefix}-input`;
    this.input.className = "visually-hidden";
    this.input.tabIndex = -1;
    this.input.setAttribute("aria-hidden", "true");
    const hint = document.createElement("span");
    hint.className = "hint";
    hint.id = `${this.prefix}-hint`;
    hint.textContent = `Or drop or paste them here. Each needs alt text; up to ${MAX_PHOTOS}.`;
    this.addButton.setAttribute("aria-describedby", hint.id);
    pick.append(this.addButton, this.input, hint);
    this.note = document.createElement("p");
    this.note.className = "attach-note";
    this.note.hidden = true;
    this.list = document.createElement("ul");
    this.list.className = "attach-list";
    this.list.setAttribute("aria-label", "Attached photos");
    this.list.hidden = true;
    mount.replaceChildren(pick, this.note, this.list);
    mount.hidden = false;

    this.addButton.addEventListener("click", () => this.input.click());
    this.input.addEventListener("change", () => {
      const files = Array.from(this.input.files ?? []);
      this.input.value = "";
      this.add(files, true);
    });
    this.listenForDrops(options.dropTarget, signal);
    // Back online: the uploads the network failed go again, with the same keys.
    window.addEventListener("online", () => {
      for (const a of this.items) if (a.state === "failed") this.retry(a, false);
    }, { signal });
  }

  /**
   * @param {HTMLElement} target
   * @param {AbortSignal} signal
   */
  listenForDrops(target, signal) {
    let depth = 0;
    /** @param {DragEvent} event */
    const hasFiles = (event) => Array.from(event.dataTransfer?.types ?? []).includes("Files");
    const done = () => {
      depth = 0;
      target.classList.remove("is-dropping");
    };
    target.addEventListener("dragenter", (event) => {
      if (!hasFiles(event) || this.locked) return;
      event.preventDefault();
      depth += 1;
      target.classList.add("is-dropping");
    }, { signal });
    target.addEventListener("dragover", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      if (event.dataTransfer) event.dataTransfer.dropEffect = this.locked ? "none" : "copy";
    }, { signal });
    target.addEventListener("dragleave", (event) => {
      if (!hasFiles(event)) return;
      depth = Math.max(0, depth - 1);
      if (depth === 0) done();
    }, { signal });
    target.addEventListener("drop", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      done();
      if (!this.locked) this.add(Array.from(event.dataTransfer?.files ?? []), false);
    }, { signal });
    target.addEventListener("paste", (event) => {
      const data = event.clipboardData;
      const files = Array.from(data?.files ?? []);
      // Text copied from a word processor often comes with a picture of itself: when
      // there is text, the editor meant the text.
      if (!files.length || this.locked || data?.getData("text/plain").trim()) return;
      event.preventDefault();
      this.add(files, false);
    }, { signal });
  }

  /** How many photos there are. */
  count() {
    return this.items.length;
  }

  /** How many are still on their way to the server (and whether a post's are loading). */
  busy() {
    return this.items.filter((a) => a.uploading).length + (this.loading ? 1 : 0);
  }

  /**
   * Attach files: each gets a row, a key and its upload at once.
   * @param {File[]} files
   * @param {boolean} focus move the focus to the first new photo's alt text
   */
  add(files, focus) {
    const photos = files.filter(isPhoto);
    const room = Math.max(0, MAX_PHOTOS - this.items.length);
    const taken = photos.slice(0, room);
    /** @type {string[]} */
    const notes = [];
    if (photos.length < files.length) {
      const others = files.filter((f) => !isPhoto(f)).map((f) => f.name || "a file");
      notes.push(`Only photos can be attached: ${others.join(", ")} ${others.length === 1 ? "is" : "are"} not one.`);
    }
    if (taken.length < photos.length) {
      notes.push(`A post can have ${MAX_PHOTOS} photos: ${photos.length - taken.length} ${
        photos.length - taken.length === 1 ? "was" : "were"} not attached.`);
    }
    this.say(notes.join(" "));
    /** @type {Attachment[]} */
    const added = [];
    for (const file of taken) {
      const a = new Attachment({ local: newKey(), key: newKey(), name: file.name || "Pasted photo",
                                 alt: "", caption: "", credit: "", thumb: "", media: null }, file);
      this.items.push(a);
      this.list.append(this.build(a));
      added.push(a);
      const record = { local: a.local, slug: this.slug, file, name: a.name, thumb: "" };
      this.pending?.put(record);
      thumbnail(file).then((thumb) => {
        if (!thumb || a.removed) return;
        if (!a.media) a.thumb = thumb;
        a.render();
        if (a.file) this.pending?.put({ ...record, thumb });
        this.changed();
      });
    }
    if (!added.length) {
      if (notes.length) announcePhotos(notes.join(" "));
      return;
    }
    this.renumber();
    announcePhotos(`${added.length === 1 ? "Photo" : `${added.length} photos`} attached, ` +
      `uploading. ${added.length === 1 ? "It needs" : "Each needs"} alt text. ${notes.join(" ")}`.trim());
    this.changed();
    this.pump();
    if (focus) /** @type {HTMLElement | null} */ (added[0]?.item.querySelector(".attach-alt") ?? null)?.focus();
  }

  /**
   * Put back a draft's photos: uploaded ones as they were, the others from IndexedDB,
   * uploaded again with the same keys.
   * @param {StoredPhoto[]} photos
   */
  restore(photos) {
    for (const stored of photos.slice(0, MAX_PHOTOS)) {
      const a = new Attachment(stored, null);
      this.items.push(a);
      this.list.append(this.build(a));
      if (a.media) continue;
      const lost = () => {
        this.remove(a, false);
        this.say(`“${a.name}” could not be kept through the reload: attach it again.`);
      };
      if (!this.pending) {
        lost();
        continue;
      }
      this.pending.get(a.local).then((record) => {
        if (a.removed) return;
        if (!record?.file) {
          lost();
          return;
        }
        a.file = record.file;
        a.thumb = record.thumb;
        a.render();
        this.pump();
      });
    }
    this.renumber();
    this.changed();
    // Files kept for photos no draft names any more (posted from another tab, say).
    this.pending?.locals(this.slug).then((locals) => {
      const kept = new Set(this.items.map((a) => a.local));
      for (const local of locals ?? []) {
        if (typeof local === "string" && !kept.has(local)) this.pending?.delete(local);
      }
    });
  }

  /**
   * Show a post's photos, to be edited.
   * @param {Photo[]} media
   */
  show(media) {
    for (const photo of media) {
      const a = new Attachment({ local: newKey(), key: newKey(), name: "", alt: photo.alt,
                                 caption: photo.caption, credit: photo.credit,
                                 thumb: smallest(photo).url, media: photo }, null);
      this.items.push(a);
      this.list.append(this.build(a));
    }
    this.renumber();
    this.changed();
  }

  /** The photos as a post names them, in order (only those uploaded). */
  refs() {
    return this.items.filter((a) => a.media).map((a) => ({
      id: /** @type {Photo} */ (a.media).id, alt: a.alt.trim(), caption: a.caption.trim(),
      credit: a.credit.trim() }));
  }

  /**
   * The photos as a draft keeps them (those the server refused cannot be posted).
   * @returns {StoredPhoto[]}
   */
  stored() {
    return this.items.filter((a) => a.state !== "refused").map((a) => ({
      local: a.local, key: a.key, name: a.name, alt: a.alt, caption: a.caption,
      credit: a.credit, thumb: a.media ? smallest(a.media).url : "", media: a.media }));
  }

  /**
   * The photos as readers would see them: uploaded ones as article.js draws them, the
   * others from their local thumbnail.
   * @returns {HTMLElement[]}
   */
  figures() {
    return this.items.map((a) => {
      if (a.media) {
        return photoFigure({ ...a.media, alt: a.alt.trim(), caption: a.caption.trim(),
                             credit: a.credit.trim() });
      }
      const figure = document.createElement("figure");
      figure.className = "photo is-local";
      if (a.thumb) {
        const img = document.createElement("img");
        img.src = a.thumb;
        img.alt = a.alt.trim();
        figure.append(img);
      } else {
        const box = document.createElement("div");
        box.className = "photo-pending";
        box.textContent = `${a.name}: shown once uploaded`;
        figure.append(box);
      }
      if (a.caption.trim() || a.credit.trim()) {
        const caption = document.createElement("figcaption");
        if (a.caption.trim()) {
          const text = document.createElement("span");
          text.className = "photo-caption";
          text.textContent = a.caption.trim();
          caption.append(text);
        }
        if (a.credit.trim()) {
          const credit = document.createElement("span");
          credit.className = "photo-credit";
          credit.textContent = a.credit.trim();
          caption.append(" ", credit);
        }
        figure.append(caption);
      }
      return figure;
    });
  }

  /**
   * What stops the post from going out now, with the control to fix it; uploads still
   * running are not a problem (the post waits for them).
   * @returns {{text: string, focus: HTMLElement | null} | null}
   */
  problem() {
    const missing = this.items.find((a) => !a.alt.trim());
    if (missing) {
      const n = this.items.indexOf(missing) + 1;
      const field = /** @type {HTMLTextAreaElement} */ (missing.item.querySelector(".attach-alt"));
      missing.invalid(true);
      return { text: `Add alt text to photo ${n}: say what it shows, for readers who ` +
        "cannot see it.", focus: field };
    }
    const failed = this.items.find((a) => a.state === "failed" || a.state === "refused");
    if (failed) {
      const n = this.items.indexOf(failed) + 1;
      const retry = failed.state === "failed";
      return { text: `Photo ${n} did not upload. ${retry ? "Retry it or remove it" : "Remove it"}, ` +
        "then post again.",
        focus: failed.item.querySelector(retry ? ".attach-retry" : ".attach-remove") };
    }
    return null;
  }

  /** Resolves at the next change of any photo (an upload ending, a removal). */
  nextChange() {
    return new Promise((resolve) => this.waiters.push(() => resolve(undefined)));
  }

  /** Wake whoever waits for a change (to notice a cancel). */
  wake() {
    const waiters = this.waiters.splice(0);
    for (const waiter of waiters) waiter();
  }

  /**
   * While a post is being sent, its photos cannot change.
   * @param {boolean} locked
   */
  lock(locked) {
    this.locked = locked;
    this.addButton.disabled = locked || this.loading;
    for (const a of this.items) {
      for (const field of a.item.querySelectorAll("input, textarea")) {
        /** @type {HTMLInputElement | HTMLTextAreaElement} */ (field).readOnly = locked;
      }
      for (const button of a.item.querySelectorAll("button")) button.disabled = locked;
    }
  }

  /**
   * A post's photos are being fetched (true), arrived (false), or could not be (a text).
   * @param {boolean | string} state
   */
  setLoading(state) {
    this.loading = state === true;
    this.addButton.disabled = state !== false;
    this.say(state === true ? "Loading this post’s photos…" : typeof state === "string" ? state : "");
    this.changed();
  }

  /** Every photo off: after a successful post. */
  clear() {
    for (const a of [...this.items]) this.remove(a, false);
    this.say("");
  }

  /** Stop listening and uploading: the form is gone. */
  destroy() {
    this.stop.abort();
    for (const a of this.items) {
      a.removed = true;
      a.abort?.();
    }
    this.wake();
  }

  /** @param {string} text */
  say(text) {
    this.note.textContent = text;
    this.note.hidden = !text;
  }

  // --- uploads ---------------------------------------------------------------------------

  /** Start queued uploads, a few at a time. */
  pump() {
    let running = this.items.filter((a) => a.state === "uploading" || a.state === "processing").length;
    for (const a of this.items) {
      if (running >= UPLOADS_AT_ONCE) break;
      if (a.state === "queued" && a.file) {
        running += 1;
        this.upload(a, a.file);
      }
    }
  }

  /**
   * @param {Attachment} a
   * @param {Blob} file
   */
  async upload(a, file) {
    a.move("uploading");
    a.progress = 0;
    a.error = "";
    a.render();
    const job = uploadPhoto(file, a.name || "photo", this.slug, a.key, (sent) => {
      if (a.removed) return;
      a.progress = sent;
      if (sent >= 1 && a.state === "uploading") a.move("processing");
      a.render();
    });
    a.abort = job.abort;
    const n = () => this.items.indexOf(a) + 1;
    try {
      const result = await job.done;
      if (a.removed) return;
      if (result.ok && typeof result.data?.id === "number") {
        a.move("done");
        a.media = result.data;
        a.file = null;
        a.thumb = smallest(result.data).url;
        this.pending?.delete(a.local);
        announcePhotos(`Photo ${n()} uploaded.`);
      } else {
        const code = result.data?.error?.code;
        a.move(PERMANENT_REFUSALS.has(code) ? "refused" : "failed");
        // The same key with another request: this upload must start afresh.
        if (code === "idempotency_key_reused") a.key = newKey();
        a.error = uploadFailureText(result);
        announcePhotos(`Photo ${n()} did not upload: ${a.error}`);
      }
    } catch (error) {
      if (a.removed) return;
      a.move("failed");
      a.error = /** @type {Error} */ (error).message === "stalled"
        ? "The upload stalled. Check the connection, then retry."
        : NETWORK_FAILURE;
      announcePhotos(`Photo ${n()} did not upload: ${a.error} Use Retry.`);
    } finally {
      a.abort = null;
    }
    a.render();
    this.changed();
    this.pump();
  }

  /**
   * Upload a failed photo again, with its key, so that an upload the server did get
   * returns the same photo instead of a second one.
   * @param {Attachment} a
   * @param {boolean} focus
   */
  retry(a, focus) {
    if (a.state !== "failed" || !a.file) return;
    a.move("queued");
    a.render();
    this.changed();
    this.pump();
    if (focus) /** @type {HTMLElement | null} */ (a.item.querySelector(".attach-remove"))?.focus();
  }

  /**
   * @param {Attachment} a
   * @param {boolean} focus move the focus to the next photo, or to Add photos
   */
  remove(a, focus) {
    const index = this.items.indexOf(a);
    if (index < 0) return;
    a.removed = true;
    a.abort?.();
    this.items.splice(index, 1);
    a.item.remove();
    this.pending?.delete(a.local);
    this.renumber();
    this.changed();
    this.pump();
    if (focus) {
      const next = this.items[index] ?? this.items[index - 1];
      /** @type {HTMLElement | null} */ (next?.item.querySelector(".attach-remove") ?? this.addButton)?.focus();
      announcePhotos(`Photo ${index + 1} removed.`);
    }
  }

  changed() {
    this.list.hidden = this.items.length === 0;
    this.onChange();
    this.wake();
  }

  // --- the rows --------------------------------------------------------------------------

  /**
   * @param {Attachment} a
   * @returns {HTMLLIElement}
   */
  build(a) {
    return a.build(this.prefix, { changed: () => this.changed(), retry: () => this.retry(a, true),
                                  remove: () => this.remove(a, true) });
  }

  /** Number the rows, and name each button after its photo. */
  renumber() {
    this.items.forEach((a, index) => a.number(index + 1));
  }
}

/**
 * Wait until a tray's photos are all uploaded: true when the post may go out, false
 * (after saying why) when it must not.
 * @param {PhotoTray} tray
 * @param {{wait: (text: string) => void, fail: (text: string) => void, cancelled: () => boolean}} ui
 * @returns {Promise<boolean>}
 */
export async function photosReady(tray, ui) {
  for (;;) {
    if (ui.cancelled()) return false;
    const problem = tray.problem();
    if (problem) {
      ui.fail(problem.text);
      problem.focus?.focus();
      return false;
    }
    const busy = tray.busy();
    if (!busy) return true;
    ui.wait(`Waiting for ${busy === 1 ? "a photo" : `${busy} photos`} to finish uploading: ` +
      "it goes out as soon as they are done.");
    await tray.nextChange();
  }
}
