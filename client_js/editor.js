// The editor desk, enhanced. Every action already works as a plain form POST; this module
// makes the stream page quick under pressure: a live preview rendered by the server (so
// it is exactly what readers get), Ctrl/Cmd+Enter to post, the draft kept in
// localStorage as it is typed, posting with fetch and an Idempotency-Key that is kept
// until the post is known to be published (so a retry never posts twice), photos
// (picked, dropped or pasted, uploaded at once, kept with the draft), edit in place,
// delete after a confirm step, pin/unpin, and the post list kept live with the Bulletin
// client. Written against docs/api.md and docs/editor.md.

import { BulletinClient } from "./client.js";
import { photoFigure } from "./reader.js";
import { localiseTimes } from "./times.js";

const PREVIEW_DELAY_MS = 250;
const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute("content") ?? "";

/**
 * @typedef {import("./reader.js").Photo} Photo
 * @typedef {{id: number, body: string | null, html: string | null, pinned: boolean,
 *            author: {id: number, name: string} | null, created_at: string,
 *            edited_at: string | null, deleted: boolean, media?: Photo[]}} Post
 * @typedef {{ok: boolean, status: number, data: any, retryAfter: string | null}} Result
 * @typedef {{id: number, alt: string, caption: string, credit: string}} PhotoRef
 *   a photo as a post names it in POST and PATCH
 * @typedef {{local: string, key: string, name: string, alt: string, caption: string,
 *            credit: string, thumb: string, media: Photo | null}} StoredPhoto
 *   a draft's photo: uploaded (media) or still a file in IndexedDB under `local`
 * @typedef {{body: string, pinned: boolean, key: string, photos?: StoredPhoto[]}} Draft
 * @typedef {{code: string, message: string}} Notice
 */

/**
 * @param {string} id
 * @returns {HTMLElement | null}
 */
const byId = (id) => document.getElementById(id);

/**
 * A JSON request with the session's CSRF token. Throws only when the network fails.
 * @param {string} method
 * @param {string} url
 * @param {unknown} [body]
 * @param {Record<string, string>} [headers]
 * @returns {Promise<Result>}
 */
async function request(method, url, body, headers = {}) {
  const response = await fetch(url, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json",
               "X-CSRF-Token": csrf, ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await response.json(); } catch { /* not JSON: a proxy's error page */ }
  return { ok: response.ok, status: response.status, data,
           retryAfter: response.headers.get("Retry-After") };
}

/**
 * What to tell the editor about a refused request.
 * @param {Result} result
 * @returns {string}
 */
function failureText(result) {
  const code = result.data?.error?.code;
  if (result.status === 429) {
    return `Too many requests just now. Wait ${result.retryAfter ?? "a few"} seconds and retry.`;
  }
  if (result.status === 401) {
    return "Your sign-in has ended. Sign in again in another tab, then retry here.";
  }
  if (code === "csrf_failed") return "This page is out of date. Reload it, then retry.";
  if (result.status >= 500 || !result.data?.error) {
    return `The server could not save this (HTTP ${result.status}). Retry in a moment.`;
  }
  const message = String(result.data.error.message);
  return message.charAt(0).toUpperCase() + message.slice(1) + (message.endsWith(".") ? "" : ".");
}

const NETWORK_FAILURE = "Could not reach the server. Check the connection, then retry.";

/**
 * A new idempotency key (crypto.getRandomValues works outside secure contexts too).
 * @returns {string}
 */
function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Say something in the page's polite status region.
 * @param {string} text
 */
function announce(text) {
  const flash = byId("flash");
  if (!flash) return;
  const p = document.createElement("p");
  p.className = "notice notice-ok";
  p.textContent = text;
  flash.replaceChildren(p);
}

/**
 * Show or clear an inline error (a role="alert" element).
 * @param {HTMLElement} element
 * @param {string} text
 */
function showError(element, text) {
  element.textContent = text;
  element.hidden = !text;
}

/**
 * Run `action` on Ctrl/Cmd+Enter inside `element`.
 * @param {HTMLElement} element
 * @param {() => void} action
 */
function onCtrlEnter(element, action) {
  element.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      action();
    }
  });
}

// --- the draft ---------------------------------------------------------------------------

/**
 * The draft of one stream, kept in localStorage so that a reload, a crash or a failed
 * post loses nothing.
 */
class DraftStore {
  /** @param {string} slug */
  constructor(slug) {
    this.name = `bulletin:draft:${slug}`;
  }

  /** @returns {Draft | null} */
  load() {
    try {
      const raw = localStorage.getItem(this.name);
      const draft = raw ? JSON.parse(raw) : null;
      if (!draft || typeof draft.body !== "string" || typeof draft.key !== "string") return null;
      draft.photos = Array.isArray(draft.photos) ? draft.photos.filter(isStoredPhoto) : [];
      return draft;
    } catch {
      return null;
    }
  }

  /** @param {Draft} draft */
  save(draft) {
    try { localStorage.setItem(this.name, JSON.stringify(draft)); } catch { /* full or off */ }
  }

  clear() {
    try { localStorage.removeItem(this.name); } catch { /* storage off */ }
  }
}

/**
 * @param {unknown} value
 * @returns {value is StoredPhoto}
 */
function isStoredPhoto(value) {
  const photo = /** @type {Record<string, unknown> | null} */ (value);
  return !!photo && ["local", "key", "name", "alt", "caption", "credit", "thumb"].every(
    (field) => typeof photo[field] === "string") &&
    (photo.media === null || (typeof photo.media === "object" &&
      Array.isArray(/** @type {Photo} */ (photo.media).variants)));
}

// --- photos: uploading -------------------------------------------------------------------

const MAX_PHOTOS = 20; // the server's limit per post (MAX_POST_MEDIA)
// Two at a time: on a phone's uplink the first photos finish sooner than if all shared
// it, and the server processes two at a time anyway (BULLETIN_MEDIA_WORKERS).
const UPLOADS_AT_ONCE = 2;
// An upload with no progress for this long is given up as failed, to be retried: a phone
// that lost its signal may not see the connection fail for minutes.
const STALL_MS = 60_000;
const THUMB_PX = 640;
const PERMANENT_REFUSALS = new Set([
  "upload_too_large", "too_many_pixels", "unsupported_media_type", "unsupported_image",
  "corrupt_image", "validation_error", "invalid_form", "media_taken_down", "stream_not_found"]);

/**
 * POST a photo to /api/media with XMLHttpRequest, whose upload reports progress (fetch's
 * does not). Only the file and its story are sent: the words go with the post, and
 * every retry of an upload must be the same request for the server to answer it with
 * the first one's photo. Rejects when the network fails or the upload stalls.
 * @param {Blob} file
 * @param {string} name
 * @param {string} stream the story's slug, so that the photo is listed with its photos
 * @param {string} key the attachment's Idempotency-Key, the same for every retry
 * @param {(sent: number) => void} onProgress the fraction of the bytes sent, 0 to 1
 * @returns {{done: Promise<Result>, abort: () => void}}
 */
function uploadPhoto(file, name, stream, key, onProgress) {
  const xhr = new XMLHttpRequest();
  let stalled = false;
  let timer = 0;
  const watch = () => {
    clearTimeout(timer);
    timer = window.setTimeout(() => { stalled = true; xhr.abort(); }, STALL_MS);
  };
  const done = new Promise((resolve, reject) => {
    xhr.open("POST", "/api/media");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.setRequestHeader("Idempotency-Key", key);
    xhr.upload.addEventListener("progress", (event) => {
      watch();
      if (event.lengthComputable && event.total) onProgress(event.loaded / event.total);
    });
    xhr.upload.addEventListener("load", () => { watch(); onProgress(1); });
    xhr.addEventListener("load", () => {
      clearTimeout(timer);
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch { /* a proxy's error page */ }
      resolve({ ok: xhr.status >= 200 && xhr.status < 300, status: xhr.status, data,
                retryAfter: xhr.getResponseHeader("Retry-After") });
    });
    const fail = () => {
      clearTimeout(timer);
      reject(new Error(stalled ? "stalled" : "network"));
    };
    xhr.addEventListener("error", fail);
    xhr.addEventListener("abort", fail);
    const form = new FormData();
    form.append("file", file, name);
    if (stream) form.append("stream", stream);
    watch();
    xhr.send(form);
  });
  return { done, abort: () => xhr.abort() };
}

/**
 * What to tell the editor about a refused upload.
 * @param {Result} result
 * @returns {string}
 */
function uploadFailureText(result) {
  const error = result.data?.error;
  switch (error?.code) {
    case "upload_too_large": {
      const most = Number(error.details?.max_bytes);
      return most ? `Too large: photos can be up to ${Math.floor(most / 1048576)} MB.`
        : "Too large for the server.";
    }
    case "too_many_pixels":
      return "Too many pixels for the server: make it smaller, then attach it again.";
    case "unsupported_image":
      return "Not a photo the server takes: JPEG, PNG, WebP, HEIC or GIF.";
    case "corrupt_image":
      return "The file is damaged or incomplete: attach it again.";
    case "media_taken_down":
      return "This photo was taken down from the site and cannot be posted again.";
    default:
      return failureText(result);
  }
}

/**
 * A small JPEG of a photo as a data: URL, drawn upright, for the thumbnail and the
 * preview while it uploads ("" when the browser cannot decode it, like HEIC in Chromium).
 * A data: URL rather than an object URL: the desk's Content-Security-Policy allows
 * `img-src data:` but not `blob:`.
 * @param {Blob} file
 * @returns {Promise<string>}
 */
async function thumbnail(file) {
  try {
    const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    const scale = Math.min(1, THUMB_PX / Math.max(bitmap.width, bitmap.height));
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    const context = canvas.getContext("2d");
    if (!context) return "";
    context.fillStyle = "#ffffff"; // transparent PNGs on white, as JPEG has no alpha
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    bitmap.close();
    return canvas.toDataURL("image/jpeg", 0.8);
  } catch {
    return "";
  }
}

/**
 * The smallest of an uploaded photo's files: its thumbnail.
 * @param {Photo} photo
 * @returns {{width: number, height: number, url: string}}
 */
function smallest(photo) {
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

/**
 * Files not yet uploaded, kept in IndexedDB so that they survive a reload or a crash;
 * the draft in localStorage names them by their `local` id. Every call resolves, to
 * undefined when IndexedDB is off (private windows in some browsers): the photos then
 * live only as long as the page.
 */
class PendingFiles {
  constructor() {
    /** @type {Promise<IDBDatabase | null>} */
    this.db = new Promise((resolve) => {
      try {
        const open = indexedDB.open("bulletin-desk", 1);
        open.onupgradeneeded = () => {
          open.result.createObjectStore("photos", { keyPath: "local" }).createIndex("slug", "slug");
        };
        open.onsuccess = () => resolve(open.result);
        open.onerror = () => resolve(null);
        open.onblocked = () => resolve(null);
      } catch {
        resolve(null);
      }
    });
  }

  /**
   * @template T
   * @param {IDBTransactionMode} mode
   * @param {(store: IDBObjectStore) => IDBRequest<T>} action
   * @returns {Promise<T | undefined>}
   */
  async run(mode, action) {
    const db = await this.db;
    if (!db) return undefined;
    return new Promise((resolve) => {
      try {
        const transaction = db.transaction("photos", mode);
        const request = action(transaction.objectStore("photos"));
        transaction.oncomplete = () => resolve(request.result);
        transaction.onerror = () => resolve(undefined);
        transaction.onabort = () => resolve(undefined);
      } catch {
        resolve(undefined);
      }
    });
  }

  /** @param {{local: string, slug: string, file: Blob, name: string, thumb: string}} record */
  put(record) { return this.run("readwrite", (store) => store.put(record)); }

  /**
   * @param {string} local
   * @returns {Promise<{file: Blob, thumb: string} | undefined>}
   */
  get(local) { return this.run("readonly", (store) => store.get(local)); }

  /** @param {string} local */
  delete(local) { return this.run("readwrite", (store) => store.delete(local)); }

  /** @param {string} slug */
  locals(slug) { return this.run("readonly", (store) => store.index("slug").getAllKeys(slug)); }
}

/**
 * An attached photo's upload, as a state machine:
 *   queued → uploading → processing (all bytes sent, the server is resizing) → done
 *   uploading | processing → failed (network, 5xx, 429: Retry) → queued
 *   uploading | processing → refused (the server will never take this file)
 * @typedef {"queued" | "uploading" | "processing" | "done" | "failed" | "refused"} UploadState
 */
/** @type {Record<UploadState, UploadState[]>} */
const UPLOAD_MOVES = {
  queued: ["uploading"],
  uploading: ["processing", "done", "failed", "refused"],
  processing: ["done", "failed", "refused"],
  done: [],
  failed: ["queued"],
  refused: [],
};

/** One photo attached to the compose form or to a post being edited. */
class Attachment {
  /**
   * @param {StoredPhoto} stored
   * @param {Blob | null} file
   */
  constructor(stored, file) {
    this.local = stored.local;
    this.key = stored.key;
    this.name = stored.name;
    this.alt = stored.alt;
    this.caption = stored.caption;
    this.credit = stored.credit;
    this.thumb = stored.thumb;
    /** @type {Photo | null} */
    this.media = stored.media;
    this.file = file;
    /** @type {UploadState} */
    this.state = stored.media ? "done" : "queued";
    this.progress = 0;
    this.error = "";
    this.removed = false;
    /** @type {(() => void) | null} */
    this.abort = null;
    // Set by PhotoTray.build.
    this.item = document.createElement("li");
  }

  /** @param {UploadState} next */
  move(next) {
    if (!UPLOAD_MOVES[this.state].includes(next)) {
      throw new Error(`photo upload: expected one of ${UPLOAD_MOVES[this.state].join(", ") ||
        "no state"} after ${this.state}, got ${next}`);
    }
    this.state = next;
  }

  get uploading() {
    return this.state === "queued" || this.state === "uploading" || this.state === "processing";
  }
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
class PhotoTray {
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
        this.render(a);
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
        this.render(a);
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
   * The photos as readers would see them: uploaded ones as reader.js draws them, the
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
      this.invalid(missing, true);
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
    this.render(a);
    const job = uploadPhoto(file, a.name || "photo", this.slug, a.key, (sent) => {
      if (a.removed) return;
      a.progress = sent;
      if (sent >= 1 && a.state === "uploading") a.move("processing");
      this.render(a);
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
    this.render(a);
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
    this.render(a);
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
    const id = `${this.prefix}-${a.local}`;
    const li = document.createElement("li");
    li.className = "attach-item";
    const thumb = document.createElement("div");
    thumb.className = "attach-thumb";
    const main = document.createElement("div");
    main.className = "attach-main";

    const title = document.createElement("p");
    title.className = "attach-title";
    const number = document.createElement("strong");
    number.className = "attach-number";
    const name = document.createElement("span");
    name.className = "attach-name";
    name.textContent = a.name;
    title.append(number, " ", name);

    const state = document.createElement("p");
    state.className = "attach-state";
    const progress = document.createElement("progress");
    progress.max = 100;
    progress.id = `${id}-progress`;
    const stateText = document.createElement("span");
    stateText.className = "attach-state-text";
    stateText.id = `${id}-state`;
    progress.setAttribute("aria-labelledby", stateText.id);
    state.append(progress, stateText);

    /**
     * @param {string} field
     * @param {string} label
     * @param {number} most
     * @param {string} value
     * @param {string} [hint]
     */
    const text = (field, label, most, value, hint) => {
      const box = document.createElement("div");
      box.className = `attach-field attach-field-${field}`;
      const labelElement = document.createElement("label");
      labelElement.htmlFor = `${id}-${field}`;
      labelElement.textContent = label;
      // Alt text is a sentence or two: it gets room to be read back whole.
      const input = document.createElement(hint ? "textarea" : "input");
      if (input instanceof HTMLTextAreaElement) input.rows = 2;
      else input.type = "text";
      input.id = `${id}-${field}`;
      input.className = `attach-${field}`;
      input.maxLength = most;
      input.value = value;
      input.setAttribute("autocomplete", "off");
      box.append(labelElement);
      if (hint) {
        const hintElement = document.createElement("span");
        hintElement.className = "hint";
        hintElement.id = `${id}-${field}-hint`;
        hintElement.textContent = hint;
        box.append(hintElement);
        input.setAttribute("aria-describedby", hintElement.id);
      }
      box.append(input);
      // Enter in a photo's field must not post the whole form (nor break alt text).
      input.addEventListener("keydown", (/** @type {Event} */ event) => {
        const key = /** @type {KeyboardEvent} */ (event);
        if (key.key === "Enter" && !key.ctrlKey && !key.metaKey) event.preventDefault();
      });
      return { box, input };
    };
    const alt = text("alt", "Alt text (required)", 1000, a.alt,
      "What the photo shows, for readers who cannot see it.");
    alt.input.setAttribute("aria-required", "true");
    const altError = document.createElement("p");
    altError.className = "error-message attach-alt-error";
    altError.id = `${id}-alt-error`;
    altError.hidden = true;
    altError.textContent = "Alt text is required: describe the photo.";
    alt.box.append(altError);
    const caption = text("caption", "Caption (optional)", 2000, a.caption);
    const credit = text("credit", "Credit (optional)", 200, a.credit);
    const extra = document.createElement("div");
    extra.className = "attach-extra";
    extra.append(caption.box, credit.box);

    const actions = document.createElement("div");
    actions.className = "attach-actions";
    const retry = document.createElement("button");
    retry.type = "button";
    retry.className = "attach-retry";
    retry.textContent = "Retry";
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "attach-remove danger";
    remove.textContent = "Remove";
    actions.append(retry, remove);

    main.append(title, state, actions, alt.box, extra);
    li.append(thumb, main);
    a.item = li;

    alt.input.addEventListener("input", () => {
      a.alt = alt.input.value;
      if (a.alt.trim()) this.invalid(a, false);
      this.changed();
    });
    caption.input.addEventListener("input", () => { a.caption = caption.input.value; this.changed(); });
    credit.input.addEventListener("input", () => { a.credit = credit.input.value; this.changed(); });
    retry.addEventListener("click", () => this.retry(a, true));
    remove.addEventListener("click", () => this.remove(a, true));
    this.render(a);
    return li;
  }

  /**
   * Mark a photo's alt text as missing, or not.
   * @param {Attachment} a
   * @param {boolean} invalid
   */
  invalid(a, invalid) {
    const input = /** @type {HTMLTextAreaElement} */ (a.item.querySelector(".attach-alt"));
    const error = /** @type {HTMLElement} */ (a.item.querySelector(".attach-alt-error"));
    error.hidden = !invalid;
    input.setAttribute("aria-invalid", String(invalid));
    const hint = `${input.id}-hint`;
    input.setAttribute("aria-describedby", invalid ? `${error.id} ${hint}` : hint);
    a.item.classList.toggle("is-invalid", invalid);
  }

  /** @param {Attachment} a */
  render(a) {
    const li = a.item;
    li.dataset.state = a.state;
    const thumb = /** @type {HTMLElement} */ (li.querySelector(".attach-thumb"));
    const img = thumb.querySelector("img");
    if (a.thumb) {
      if (img?.getAttribute("src") !== a.thumb) {
        const image = document.createElement("img");
        image.src = a.thumb;
        image.alt = ""; // the alt text field beside it says what it shows
        thumb.replaceChildren(image);
      }
    } else {
      let none = thumb.querySelector(".attach-nothumb");
      if (!none) {
        none = document.createElement("span");
        none.className = "attach-nothumb";
        thumb.replaceChildren(none);
      }
      none.textContent = a.uploading ? "Preview after upload" : "No preview";
    }
    const progress = /** @type {HTMLProgressElement} */ (li.querySelector("progress"));
    const stateText = /** @type {HTMLElement} */ (li.querySelector(".attach-state-text"));
    const percent = Math.round(a.progress * 100);
    progress.hidden = !a.uploading;
    if (a.state === "uploading") progress.value = percent;
    else progress.removeAttribute("value"); // indeterminate while waiting or processing
    stateText.textContent = {
      queued: a.file ? "Waiting to upload…" : "Getting the file back…",
      uploading: `Uploading… ${percent}%`,
      processing: "Uploaded; the server is preparing it…",
      done: "Uploaded",
      failed: `Upload failed: ${a.error}`,
      refused: `Refused: ${a.error}`,
    }[a.state];
    const retry = /** @type {HTMLButtonElement} */ (li.querySelector(".attach-retry"));
    retry.hidden = a.state !== "failed";
  }

  /** Number the rows, and name each button after its photo. */
  renumber() {
    this.items.forEach((a, index) => {
      const n = index + 1;
      /** @type {HTMLElement} */ (a.item.querySelector(".attach-number")).textContent = `Photo ${n}`;
      a.item.querySelector(".attach-retry")?.setAttribute("aria-label", `Retry photo ${n}`);
      a.item.querySelector(".attach-remove")?.setAttribute("aria-label", `Remove photo ${n}`);
      for (const label of a.item.querySelectorAll("label")) {
        const base = label.textContent?.replace(/^Photo \d+: /, "") ?? "";
        label.textContent = base;
        const hidden = document.createElement("span");
        hidden.className = "visually-hidden";
        hidden.textContent = `Photo ${n}: `;
        label.prepend(hidden);
      }
    });
  }
}

/**
 * Wait until a tray's photos are all uploaded: true when the post may go out, false
 * (after saying why) when it must not.
 * @param {PhotoTray} tray
 * @param {{wait: (text: string) => void, fail: (text: string) => void, cancelled: () => boolean}} ui
 * @returns {Promise<boolean>}
 */
async function photosReady(tray, ui) {
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

// --- the preview ---------------------------------------------------------------------------

/**
 * Show what the server said about a text it previewed (an image it removed, say), only
 * when that changed, so that the live region speaks once per change.
 * @param {HTMLElement} container a role="status" element
 * @param {unknown} notices
 */
function showNotices(container, notices) {
  /** @type {Notice[]} */
  const list = Array.isArray(notices)
    ? notices.filter((n) => n && typeof n.message === "string") : [];
  const signature = JSON.stringify(list.map((n) => [n.code, n.message]));
  if (container.dataset.shown === signature) return;
  container.dataset.shown = signature;
  if (!list.length) {
    container.replaceChildren();
    return;
  }
  const title = document.createElement("p");
  title.className = "notices-title";
  title.textContent = list.length === 1 ? "Check before posting:" : `Check before posting (${list.length}):`;
  const items = document.createElement("ul");
  for (const notice of list) {
    const li = document.createElement("li");
    li.dataset.code = String(notice.code ?? "");
    const message = notice.message.trim();
    li.textContent = message.charAt(0).toUpperCase() + message.slice(1);
    items.append(li);
  }
  container.replaceChildren(title, items);
}

/**
 * Draw the photos in a preview, only when what they show changed (so that typing alt
 * text does not redraw every image).
 * @param {HTMLElement} container
 * @param {PhotoTray} tray
 */
function showPreviewPhotos(container, tray) {
  const signature = JSON.stringify(tray.items.map((a) => [
    a.media?.id ?? a.thumb.slice(-40), a.alt.trim(), a.caption.trim(), a.credit.trim()]));
  if (container.dataset.shown === signature) return;
  container.dataset.shown = signature;
  container.replaceChildren(...tray.figures());
}

/**
 * The preview under an inline editor, like the compose form's in stream.html.
 * @param {string} id
 */
function buildPreview(id) {
  const box = document.createElement("section");
  box.className = "preview";
  box.setAttribute("aria-labelledby", `${id}-heading`);
  box.hidden = true;
  const heading = document.createElement("h3");
  heading.id = `${id}-heading`;
  heading.textContent = "Preview";
  const html = document.createElement("div");
  html.className = "post-body";
  const photos = document.createElement("div");
  photos.className = "preview-photos";
  const notices = document.createElement("div");
  notices.className = "preview-notices";
  notices.setAttribute("role", "status");
  box.append(heading, html, photos, notices);
  return { box, html, photos, notices };
}

// --- the post list -----------------------------------------------------------------------

/** The list of posts on the stream page, built from the server's own markup. */
class PostList {
  /**
   * @param {HTMLOListElement} list
   * @param {HTMLTemplateElement} template
   */
  constructor(list, template) {
    this.list = list;
    this.template = template;
    this.live = list.dataset.live === "true";
    list.addEventListener("click", (event) => this.onClick(event));
    list.addEventListener("submit", (event) => this.onSubmit(event));
  }

  /**
   * @param {number} id
   * @returns {HTMLLIElement | null}
   */
  item(id) {
    return /** @type {HTMLLIElement | null} */ (byId(`post-${id}`));
  }

  /**
   * Apply a post's current state: add it, change it, or remove it when deleted, whatever
   * the event's op (a replayed post.created may carry a post deleted since).
   * @param {Post} post
   */
  apply(post) {
    let li = this.item(post.id);
    if (post.deleted) {
      li?.remove();
      this.updateEmpty();
      return;
    }
    if (!li) {
      if (!this.live) return;
      li = this.build(post.id);
      const after = Array.from(this.list.children).find(
        (other) => Number(/** @type {HTMLElement} */ (other).dataset.id) < post.id);
      this.list.insertBefore(li, after ?? null);
    }
    this.fill(li, post);
    this.updateEmpty();
  }

  /**
   * Replace everything with a snapshot (after the live client had to reload).
   * @param {Post[]} posts
   */
  replace(posts) {
    const keep = new Set(posts.map((p) => p.id));
    for (const li of Array.from(this.list.children)) {
      if (!keep.has(Number(/** @type {HTMLElement} */ (li).dataset.id))) li.remove();
    }
    for (const post of posts) this.apply(post);
  }

  /**
   * @param {number} id
   * @returns {HTMLLIElement}
   */
  build(id) {
    const fragment = /** @type {DocumentFragment} */ (this.template.content.cloneNode(true));
    const li = /** @type {HTMLLIElement} */ (fragment.querySelector("li"));
    li.id = `post-${id}`;
    li.dataset.id = String(id);
    for (const element of li.querySelectorAll("[href], [action]")) {
      for (const name of ["href", "action"]) {
        const value = element.getAttribute(name);
        if (value) element.setAttribute(name, value.replace("__ID__", String(id)));
      }
    }
    return li;
  }

  /**
   * @param {HTMLLIElement} li
   * @param {Post} post
   */
  fill(li, post) {
    li.dataset.body = post.body ?? "";
    li.dataset.pinned = String(post.pinned);
    li.classList.toggle("is-pinned", post.pinned);
    const time = /** @type {HTMLTimeElement} */ (li.querySelector("time"));
    if (time.dateTime !== post.created_at) {
      time.dateTime = post.created_at;
      time.textContent = post.created_at;
    }
    /** @type {HTMLElement} */ (li.querySelector(".post-author")).textContent =
      post.author?.name ?? "";
    /** @type {HTMLElement} */ (li.querySelector(".post-flag")).hidden = !post.pinned;
    /** @type {HTMLElement} */ (li.querySelector(".post-edited")).hidden = !post.edited_at;
    const body = /** @type {HTMLElement} */ (li.querySelector(".post-body"));
    // The server rendered and sanitised this HTML; it is what readers see.
    if (body.innerHTML !== post.html) body.innerHTML = post.html ?? "";
    this.fillPhotos(li, body, post.media ?? []);
    const pin = /** @type {HTMLFormElement} */ (li.querySelector('form[data-action="pin"]'));
    /** @type {HTMLInputElement} */ (pin.elements.namedItem("pinned")).value =
      post.pinned ? "0" : "1";
    /** @type {HTMLButtonElement} */ (pin.querySelector("button")).textContent =
      post.pinned ? "Unpin" : "Pin";
    localiseTimes(li);
  }

  /**
   * A post's photos as small thumbnails, each with its alt text (as _post.html draws them).
   * @param {HTMLLIElement} li
   * @param {HTMLElement} body
   * @param {Photo[]} media
   */
  fillPhotos(li, body, media) {
    const json = JSON.stringify(media);
    if (li.dataset.media === json) return;
    li.dataset.media = json;
    let list = /** @type {HTMLElement | null} */ (li.querySelector(".post-photos"));
    if (!list) {
      list = document.createElement("ul");
      list.className = "post-photos";
      list.setAttribute("aria-label", "Photos");
      body.after(list);
    }
    list.replaceChildren(...media.map((photo) => {
      const small = smallest(photo);
      const item = document.createElement("li");
      const img = document.createElement("img");
      img.src = small.url;
      img.alt = photo.alt;
      img.width = small.width;
      img.height = small.height;
      img.loading = "lazy";
      img.decoding = "async";
      const alt = document.createElement("span");
      alt.className = "post-photo-alt";
      alt.setAttribute("aria-hidden", "true");
      alt.textContent = photo.alt;
      item.append(img, alt);
      return item;
    }));
    list.hidden = media.length === 0;
  }

  /**
   * The photos a post shows, from the page when it carries them, else from the API.
   * @param {HTMLLIElement} li
   * @returns {Promise<Photo[] | null>} null when they could not be had
   */
  async photosOf(li) {
    if (li.dataset.media !== undefined) {
      try { return JSON.parse(li.dataset.media); } catch { /* fetch them instead */ }
    }
    try {
      const result = await request("GET", `/api/posts/${li.dataset.id}`);
      return result.ok ? result.data.media ?? [] : null;
    } catch {
      return null;
    }
  }

  updateEmpty() {
    const empty = byId("no-posts");
    if (empty) empty.hidden = this.list.children.length > 0;
  }

  /** @param {MouseEvent} event */
  onClick(event) {
    const link = /** @type {HTMLElement} */ (event.target).closest("a[data-action]");
    const li = link?.closest("li.post");
    if (!link || !(li instanceof HTMLLIElement)) return;
    const action = /** @type {HTMLElement} */ (link).dataset.action;
    if (action === "edit") {
      event.preventDefault();
      this.openEditor(li);
    } else if (action === "delete") {
      event.preventDefault();
      this.openConfirm(li);
    }
  }

  /** @param {SubmitEvent} event */
  onSubmit(event) {
    const form = /** @type {HTMLFormElement} */ (event.target);
    const li = form.closest("li.post");
    if (form.dataset.action !== "pin" || !(li instanceof HTMLLIElement)) return;
    event.preventDefault();
    const pinned = li.dataset.pinned !== "true";
    this.change(li, { pinned }, pinned ? "Pinned as a key event." : "Unpinned.");
  }

  /**
   * PATCH a post and show the result.
   * @param {HTMLLIElement} li
   * @param {{body?: string, pinned?: boolean, media?: PhotoRef[]}} changes
   * @param {string} done
   * @param {HTMLElement} [errorElement]
   * @returns {Promise<boolean>}
   */
  async change(li, changes, done, errorElement) {
    li.classList.add("is-busy");
    try {
      const result = await request("PATCH", `/api/posts/${li.dataset.id}`, changes);
      if (!result.ok) {
        this.reportError(li, failureText(result), errorElement);
        return false;
      }
      this.fill(li, result.data);
      announce(done);
      return true;
    } catch {
      this.reportError(li, NETWORK_FAILURE, errorElement);
      return false;
    } finally {
      li.classList.remove("is-busy");
    }
  }

  /**
   * @param {HTMLLIElement} li
   * @param {string} text
   * @param {HTMLElement} [element]
   */
  reportError(li, text, element) {
    let target = element;
    if (!target) {
      target = /** @type {HTMLElement | null} */ (li.querySelector(".post-error")) ?? undefined;
      if (!target) {
        target = document.createElement("p");
        target.className = "error-message post-error";
        target.setAttribute("role", "alert");
        li.append(target);
      }
    }
    showError(target, text);
  }

  // --- edit in place ---------------------------------------------------------------------

  /** @param {HTMLLIElement} li */
  openEditor(li) {
    const existing = /** @type {HTMLTextAreaElement | null} */ (li.querySelector(".post-editor textarea"));
    if (existing) {
      existing.focus();
      return;
    }
    const id = li.dataset.id;
    const body = /** @type {HTMLElement} */ (li.querySelector(".post-body"));
    const thumbs = /** @type {HTMLElement | null} */ (li.querySelector(".post-photos"));
    const actions = /** @type {HTMLElement} */ (li.querySelector(".post-actions"));
    const form = document.createElement("form");
    form.className = "post-editor";
    const label = document.createElement("label");
    label.htmlFor = `edit-${id}`;
    label.textContent = "Edit post";
    const textarea = document.createElement("textarea");
    textarea.id = `edit-${id}`;
    textarea.rows = 5;
    textarea.required = true;
    textarea.value = li.dataset.body ?? "";
    const photos = document.createElement("div");
    photos.className = "attach";
    const preview = buildPreview(`edit-${id}-preview`);
    const row = document.createElement("div");
    row.className = "compose-row";
    const save = document.createElement("button");
    save.type = "submit";
    save.className = "primary";
    save.textContent = "Save";
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.textContent = "Cancel";
    row.append(save, cancel);
    const error = document.createElement("p");
    error.className = "error-message";
    error.setAttribute("role", "alert");
    error.hidden = true;
    const status = document.createElement("p");
    status.className = "hint edit-status";
    status.setAttribute("role", "status");
    form.append(label, textarea, photos, row, error, status, preview.box);

    let closed = false;
    let previewTimer = 0;
    let previewRound = 0;
    const updatePreview = async () => {
      const round = ++previewRound;
      showPreviewPhotos(preview.photos, tray);
      preview.box.hidden = !textarea.value.trim() && !tray.count();
      if (!textarea.value.trim()) {
        preview.html.replaceChildren();
        showNotices(preview.notices, []);
        return;
      }
      try {
        const result = await request("POST", "/editor/preview", { body: textarea.value });
        if (round !== previewRound || closed || !result.ok) return;
        // Rendered and sanitised by the server, exactly as it will be published.
        preview.html.innerHTML = result.data.html;
        showNotices(preview.notices, result.data.notices);
      } catch { /* the preview waits for the next change */ }
    };
    const schedulePreview = () => {
      clearTimeout(previewTimer);
      previewTimer = window.setTimeout(updatePreview, PREVIEW_DELAY_MS);
    };
    const tray = new PhotoTray(photos, { prefix: `edit-${id}-photo`, dropTarget: form,
                                         slug: this.list.dataset.stream ?? "",
                                         onChange: schedulePreview });
    // Until the post's photos are known, a save leaves them as they are.
    let photosKnown = false;
    tray.setLoading(true);
    this.photosOf(li).then((media) => {
      if (closed) return;
      if (media) {
        photosKnown = true;
        tray.show(media);
        tray.setLoading(false);
      } else {
        tray.setLoading("This post’s photos could not be loaded: saving keeps them as they are.");
      }
    });

    const close = () => {
      closed = true;
      clearTimeout(previewTimer);
      tray.destroy();
      form.remove();
      body.hidden = false;
      if (thumbs) thumbs.classList.remove("is-editing");
      actions.hidden = false;
      /** @type {HTMLElement | null} */ (li.querySelector('[data-action="edit"]'))?.focus();
    };
    let waiting = false;
    const submit = async () => {
      if (save.disabled || waiting) return;
      if (!textarea.value.trim()) {
        showError(error, "Write something, or delete the post instead.");
        return;
      }
      showError(error, "");
      waiting = true;
      save.textContent = "Saving…";
      const ready = await photosReady(tray, {
        wait: (text) => { status.textContent = text; },
        fail: (text) => { showError(error, `Not saved: ${text}`); },
        cancelled: () => closed,
      });
      waiting = false;
      status.textContent = "";
      if (!ready || closed) {
        save.textContent = "Save";
        return;
      }
      save.disabled = true;
      tray.lock(true);
      /** @type {{body: string, media?: PhotoRef[]}} */
      const changes = { body: textarea.value };
      if (photosKnown) changes.media = tray.refs();
      const ok = await this.change(li, changes, "Post updated.", error);
      save.disabled = false;
      save.textContent = "Save";
      tray.lock(false);
      if (ok) close();
    };
    form.addEventListener("submit", (event) => { event.preventDefault(); submit(); });
    onCtrlEnter(form, submit);
    textarea.addEventListener("keydown", (event) => {
      if (event.key === "Escape") { event.preventDefault(); close(); }
    });
    textarea.addEventListener("input", schedulePreview);
    cancel.addEventListener("click", close);
    body.hidden = true;
    // The thumbnails give way to the photos' own rows while editing.
    if (thumbs) thumbs.classList.add("is-editing");
    actions.hidden = true;
    (thumbs ?? body).after(form);
    textarea.focus();
    updatePreview();
  }

  // --- delete with a confirm step ----------------------------------------------------------

  /** @param {HTMLLIElement} li */
  openConfirm(li) {
    const existing = /** @type {HTMLElement | null} */ (li.querySelector(".confirm button"));
    if (existing) {
      existing.focus();
      return;
    }
    const id = li.dataset.id;
    const actions = /** @type {HTMLElement} */ (li.querySelector(".post-actions"));
    const box = document.createElement("div");
    box.className = "confirm";
    box.setAttribute("role", "group");
    box.setAttribute("aria-labelledby", `confirm-${id}`);
    const question = document.createElement("p");
    question.id = `confirm-${id}`;
    question.textContent = "Delete this post? Readers see it disappear at once.";
    const yes = document.createElement("button");
    yes.type = "button";
    yes.className = "danger";
    yes.textContent = "Yes, delete";
    const no = document.createElement("button");
    no.type = "button";
    no.textContent = "Keep it";
    const error = document.createElement("p");
    error.className = "error-message";
    error.setAttribute("role", "alert");
    error.hidden = true;
    const buttons = document.createElement("div");
    buttons.className = "post-actions";
    buttons.append(yes, no);
    box.append(question, buttons, error);

    const close = () => {
      box.remove();
      actions.hidden = false;
      /** @type {HTMLElement | null} */ (li.querySelector('[data-action="delete"]'))?.focus();
    };
    no.addEventListener("click", close);
    box.addEventListener("keydown", (event) => {
      if (event.key === "Escape") { event.preventDefault(); close(); }
    });
    yes.addEventListener("click", async () => {
      yes.disabled = true;
      try {
        const result = await request("DELETE", `/api/posts/${id}`);
        if (result.ok || result.status === 404) {
          li.remove();
          this.updateEmpty();
          announce("Post deleted.");
          byId("posts-heading")?.focus();
          return;
        }
        showError(error, failureText(result));
      } catch {
        showError(error, NETWORK_FAILURE);
      }
      yes.disabled = false;
    });
    actions.hidden = true;
    actions.after(box);
    no.focus();
  }
}

// --- compose -----------------------------------------------------------------------------

/**
 * The compose form: preview, draft, photos, posting with a stable idempotency key.
 * @param {HTMLFormElement} form
 * @param {PostList | null} posts
 */
function setUpCompose(form, posts) {
  const slug = form.dataset.stream ?? "";
  const textarea = /** @type {HTMLTextAreaElement} */ (byId("compose-body"));
  const pinned = /** @type {HTMLInputElement} */ (byId("compose-pinned"));
  const button = /** @type {HTMLButtonElement} */ (byId("compose-submit"));
  const waitCancel = /** @type {HTMLButtonElement} */ (byId("compose-wait-cancel"));
  const error = /** @type {HTMLElement} */ (byId("compose-error"));
  const status = /** @type {HTMLElement} */ (byId("compose-status"));
  const previewBox = /** @type {HTMLElement} */ (byId("preview-box"));
  const preview = /** @type {HTMLElement} */ (byId("preview"));
  const previewPhotos = /** @type {HTMLElement} */ (byId("preview-photos"));
  const previewNotices = /** @type {HTMLElement} */ (byId("preview-notices"));
  const keyField = /** @type {HTMLInputElement} */ (form.elements.namedItem("idempotency_key"));
  const drafts = new DraftStore(slug);

  let previewTimer = 0;
  let previewRound = 0;
  const showPreviewBox = () => {
    previewBox.hidden = !textarea.value.trim() && !tray.count();
  };
  const updatePreview = async () => {
    const text = textarea.value;
    const round = ++previewRound;
    if (!text.trim()) {
      preview.replaceChildren();
      showNotices(previewNotices, []);
      showPreviewBox();
      return;
    }
    try {
      const result = await request("POST", "/editor/preview", { body: text });
      if (round !== previewRound || !result.ok) return;
      // Rendered and sanitised by the server, exactly as it will be published.
      preview.innerHTML = result.data.html;
      showNotices(previewNotices, result.data.notices);
      showPreviewBox();
    } catch { /* the preview waits for the next keystroke */ }
  };
  const schedulePreview = () => {
    clearTimeout(previewTimer);
    previewTimer = window.setTimeout(updatePreview, PREVIEW_DELAY_MS);
  };
  let photoTimer = 0;
  const photosChanged = () => {
    save();
    clearTimeout(photoTimer);
    photoTimer = window.setTimeout(() => {
      showPreviewPhotos(previewPhotos, tray);
      showPreviewBox();
    }, PREVIEW_DELAY_MS);
  };

  const photosMount = /** @type {HTMLElement} */ (byId("compose-photos"));
  byId("compose-photos-off")?.remove();
  const tray = new PhotoTray(photosMount, {
    prefix: "compose-photo", dropTarget: /** @type {HTMLElement} */ (form.closest(".compose") ?? form),
    onChange: photosChanged, pending: new PendingFiles(), slug });

  // The key belongs to the draft: it changes only once the draft is published.
  const saved = drafts.load();
  let key = saved?.key || keyField.value || newKey();
  let restoring = true;
  const save = () => {
    if (restoring) return;
    if (textarea.value || tray.count()) {
      drafts.save({ body: textarea.value, pinned: pinned.checked, key, photos: tray.stored() });
    } else {
      drafts.clear();
    }
  };
  const savedPhotos = saved?.photos ?? [];
  if (saved && (saved.body || savedPhotos.length) && !textarea.value) {
    textarea.value = saved.body;
    pinned.checked = saved.pinned;
    tray.restore(savedPhotos);
    const n = savedPhotos.length;
    status.textContent = `Your unsent draft was restored${
      n ? `, with ${n === 1 ? "its photo" : `its ${n} photos`}` : ""}.`;
  }
  restoring = false;
  keyField.value = key;

  let busy = false;
  let waiting = false;
  let cancelled = false;
  textarea.addEventListener("input", () => {
    if (!busy && !waiting && status.textContent) status.textContent = "";
    save();
    schedulePreview();
  });
  pinned.addEventListener("change", save);
  if (textarea.value || tray.count()) { save(); schedulePreview(); photosChanged(); }

  waitCancel.addEventListener("click", () => {
    cancelled = true;
    tray.wake();
  });

  const kept = () => (tray.count() ? "Your text and photos are kept." : "Your text is kept.");
  const post = async () => {
    if (busy || waiting) return;
    const body = textarea.value;
    if (!body.trim()) {
      showError(error, tray.count() ? "Write something to go with the photos: a post needs text."
        : "Write something to post.");
      textarea.focus();
      return;
    }
    showError(error, "");
    // Photos still uploading: the post waits for them (it never goes out without them);
    // missing alt text or a failed upload stops it with a message.
    waiting = true;
    cancelled = false;
    const ready = await photosReady(tray, {
      wait: (text) => {
        status.textContent = text;
        waitCancel.hidden = false;
      },
      fail: (text) => {
        status.textContent = "";
        showError(error, `Not posted: ${text}`);
      },
      cancelled: () => cancelled,
    });
    waiting = false;
    const waited = !waitCancel.hidden;
    waitCancel.hidden = true;
    if (!ready) {
      if (cancelled) {
        status.textContent = "Not posted yet: post when you are ready.";
        textarea.focus();
      }
      return;
    }
    // The text may have changed while the photos uploaded: the post is what the box says now.
    const sent = textarea.value;
    if (waited && !sent.trim()) {
      status.textContent = "";
      showError(error, "Write something to post.");
      textarea.focus();
      return;
    }
    busy = true;
    save();
    showError(error, "");
    status.textContent = "Posting…";
    button.disabled = true;
    textarea.readOnly = true;
    tray.lock(true);
    try {
      const result = await request("POST", `/api/streams/${encodeURIComponent(slug)}/posts`,
        { body: sent, pinned: pinned.checked, media: tray.refs() }, { "Idempotency-Key": key });
      if (result.ok) {
        posts?.apply(result.data);
        textarea.value = "";
        pinned.checked = false;
        key = newKey();
        keyField.value = key;
        tray.lock(false);
        tray.clear();
        drafts.clear();
        previewBox.hidden = true;
        preview.replaceChildren();
        previewPhotos.replaceChildren();
        delete previewPhotos.dataset.shown;
        showNotices(previewNotices, []);
        status.textContent = "Posted.";
      } else if (result.data?.error?.code === "idempotency_key_reused") {
        // An earlier try of this draft was published before the text was changed.
        key = newKey();
        keyField.value = key;
        save();
        status.textContent = "";
        showError(error, "An earlier try of this post was published (see the list) before " +
          "it changed. Post again to publish this version as a new post.");
      } else {
        status.textContent = "";
        showError(error, `Not posted: ${failureText(result)} ${kept()}`);
      }
    } catch {
      status.textContent = "";
      showError(error, `Not posted: ${NETWORK_FAILURE} ${kept()}`);
    } finally {
      busy = false;
      button.disabled = false;
      textarea.readOnly = false;
      tray.lock(false);
      textarea.focus();
    }
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); post(); });
  onCtrlEnter(form, post);
}

/**
 * A photo dropped beside a drop target must not replace the desk with the photo: the
 * draft would survive, but the editor would be thrown out of the page.
 */
function guardAgainstStrayDrops() {
  for (const type of ["dragover", "drop"]) {
    window.addEventListener(type, (event) => {
      const drag = /** @type {DragEvent} */ (event);
      // A drop target has taken it already.
      if (event.defaultPrevented || !Array.from(drag.dataTransfer?.types ?? []).includes("Files")) return;
      event.preventDefault();
      if (drag.dataTransfer) drag.dataTransfer.dropEffect = "none";
    });
  }
}

// --- live updates ------------------------------------------------------------------------

const STATUS_TEXT = {
  connecting: "Connecting to live updates…",
  live: "Live: new posts appear as they are published.",
  reconnecting: "Reconnecting… posts by others will catch up.",
  offline: "Offline: updates resume when the connection is back.",
  closed: "",
};

/**
 * Follow the stream, so that other editors' posts and changes appear without a reload.
 * @param {PostList} posts
 */
function followLive(posts) {
  const slug = posts.list.dataset.stream ?? "";
  const since = Number(posts.list.dataset.seq);
  const liveStatus = byId("live-status");
  const client = new BulletinClient({ url: location.origin });
  client.on("status", (/** @type {keyof typeof STATUS_TEXT} */ status) => {
    if (liveStatus) liveStatus.textContent = STATUS_TEXT[status] ?? "";
  });
  client.subscribe(slug, {
    since: Number.isFinite(since) ? since : null,
    onEvent(event) {
      if (event.post) posts.apply(event.post);
      else if (event.stream_info) showStream(event.stream_info);
    },
    onReset(snapshot) {
      posts.replace(snapshot.posts);
      if (snapshot.stream) showStream(snapshot.stream);
    },
    onError(failure) {
      if (liveStatus) liveStatus.textContent = `Live updates stopped: ${failure.message}`;
    },
  });
  window.addEventListener("pagehide", () => client.close());
}

/**
 * Show a stream's new title and status (another editor may have changed them).
 * @param {{title?: string, status?: string}} info
 */
function showStream(info) {
  const title = byId("stream-title");
  if (title && info.title) title.textContent = info.title;
  const badge = byId("stream-status");
  if (badge && info.status) {
    badge.dataset.state = info.status;
    badge.textContent = info.status;
  }
}

// --- small things on every page ------------------------------------------------------------

/** Copy buttons: `data-copy` names the field whose text they copy. */
function setUpCopyButtons() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const name = /** @type {HTMLElement} */ (button).dataset.copy ?? "";
    const field = /** @type {HTMLInputElement | HTMLTextAreaElement | null} */ (byId(name));
    const note = document.querySelector(`[data-copy-status="${name}"]`);
    if (!field) continue;
    /** @type {HTMLButtonElement} */ (button).hidden = false;
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(field.value);
        if (note) note.textContent = "Copied.";
      } catch {
        field.focus();
        field.select();
        if (note) note.textContent = "Selected: press Ctrl+C (⌘C on a Mac) to copy.";
      }
    });
  }
}

/** On the streams page, suggest the address from the title until it is typed by hand. */
function setUpSlugSuggestion() {
  const title = /** @type {HTMLInputElement | null} */ (byId("stream-title"));
  const slug = /** @type {HTMLInputElement | null} */ (byId("stream-slug"));
  if (!title || !slug) return;
  let typed = slug.value !== "";
  slug.addEventListener("input", () => { typed = slug.value !== ""; });
  title.addEventListener("input", () => {
    if (typed) return;
    slug.value = title.value.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
      .replace(/[^a-z0-9]+/g, "-").replace(/^-+/, "").slice(0, 64).replace(/-+$/, "");
  });
}

function main() {
  localiseTimes(document);
  setUpCopyButtons();
  setUpSlugSuggestion();
  const list = byId("posts");
  const template = byId("post-template");
  const posts = list instanceof HTMLOListElement && template instanceof HTMLTemplateElement
    ? new PostList(list, template) : null;
  const compose = byId("compose");
  if (compose instanceof HTMLFormElement) setUpCompose(compose, posts);
  if (posts || compose) guardAgainstStrayDrops();
  if (posts) {
    byId("posts-heading")?.setAttribute("tabindex", "-1");
    followLive(posts);
  }
}

main();
