// A desk photo's way to the server, apart from the page: the upload itself (XMLHttpRequest,
// for its progress; given up when it stalls), what to say when the server refuses one, the
// small thumbnail drawn while it goes, and the IndexedDB store that keeps the files not
// yet uploaded through a reload or a crash. desk_photos.js drives these.

import { csrf, failureText } from "./desk_common.js";

/** @typedef {import("./desk_common.js").Result} Result */

// An upload with no progress for this long is given up as failed, to be retried: a phone
// that lost its signal may not see the connection fail for minutes.
const STALL_MS = 60_000;
const THUMB_PX = 640;
export const PERMANENT_REFUSALS = new Set([
  "upload_too_large", "too_many_pixels", "unsupported_media_type", "unsupported_image",
  "corrupt_image", "image_processing_failed", "validation_error", "invalid_form",
  "media_taken_down", "stream_not_found"]);

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
export function uploadPhoto(file, name, stream, key, onProgress) {
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
export function uploadFailureText(result) {
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
    case "image_processing_failed":
      return "The server could not process this photo: export it again as JPEG and attach that.";
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
export async function thumbnail(file) {
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
 * Files not yet uploaded, kept in IndexedDB so that they survive a reload or a crash;
 * the draft in localStorage names them by their `local` id. Every call resolves, to
 * undefined when IndexedDB is off (private windows in some browsers): the photos then
 * live only as long as the page.
 */
export class PendingFiles {
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
