// One photo attached to a post on the desk: what a draft keeps of it, its upload as a
// state machine whose every move is checked, and its row in the tray (thumbnail, state,
// alt text, caption, credit, Retry and Remove). The tray and the uploads themselves are
// in desk_photos.js. Imports nothing.

/**
 * @typedef {import("./article.js").Photo} Photo
 * @typedef {{local: string, key: string, name: string, alt: string, caption: string,
 *            credit: string, thumb: string, media: Photo | null}} StoredPhoto
 *   a draft's photo: uploaded (media) or still a file in IndexedDB under `local`
 */

/**
 * @param {unknown} value
 * @returns {value is StoredPhoto}
 */
export function isStoredPhoto(value) {
  const photo = /** @type {Record<string, unknown> | null} */ (value);
  return !!photo && ["local", "key", "name", "alt", "caption", "credit", "thumb"].every(
    (field) => typeof photo[field] === "string") &&
    (photo.media === null || (typeof photo.media === "object" &&
      Array.isArray(/** @type {Photo} */ (photo.media).variants)));
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
export class Attachment {
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
    // Its row in the tray, made by build.
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

  // --- its row in the tray ---------------------------------------------------------------

  /**
   * Build the photo's row, its `item`.
   * @param {string} prefix the tray's, for the row's ids
   * @param {{changed: () => void, retry: () => void, remove: () => void}} on what the
   *   tray does when a field changes, or Retry or Remove is pressed
   * @returns {HTMLLIElement}
   */
  build(prefix, on) {
    const id = `${prefix}-${this.local}`;
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
    name.textContent = this.name;
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
    const alt = text("alt", "Alt text (required)", 1000, this.alt,
      "What the photo shows, for readers who cannot see it.");
    alt.input.setAttribute("aria-required", "true");
    const altError = document.createElement("p");
    altError.className = "error-message attach-alt-error";
    altError.id = `${id}-alt-error`;
    altError.hidden = true;
    altError.textContent = "Alt text is required: describe the photo.";
    alt.box.append(altError);
    const caption = text("caption", "Caption (optional)", 2000, this.caption);
    const credit = text("credit", "Credit (optional)", 200, this.credit);
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
    this.item = li;

    alt.input.addEventListener("input", () => {
      this.alt = alt.input.value;
      if (this.alt.trim()) this.invalid(false);
      on.changed();
    });
    caption.input.addEventListener("input", () => { this.caption = caption.input.value; on.changed(); });
    credit.input.addEventListener("input", () => { this.credit = credit.input.value; on.changed(); });
    retry.addEventListener("click", () => on.retry());
    remove.addEventListener("click", () => on.remove());
    this.render();
    return li;
  }

  /**
   * Mark the photo's alt text as missing, or not.
   * @param {boolean} invalid
   */
  invalid(invalid) {
    const input = /** @type {HTMLTextAreaElement} */ (this.item.querySelector(".attach-alt"));
    const error = /** @type {HTMLElement} */ (this.item.querySelector(".attach-alt-error"));
    error.hidden = !invalid;
    input.setAttribute("aria-invalid", String(invalid));
    const hint = `${input.id}-hint`;
    input.setAttribute("aria-describedby", invalid ? `${error.id} ${hint}` : hint);
    this.item.classList.toggle("is-invalid", invalid);
  }

  /** Show the photo's thumbnail and the state of its upload. */
  render() {
    const li = this.item;
    li.dataset.state = this.state;
    const thumb = /** @type {HTMLElement} */ (li.querySelector(".attach-thumb"));
    const img = thumb.querySelector("img");
    if (this.thumb) {
      if (img?.getAttribute("src") !== this.thumb) {
        const image = document.createElement("img");
        image.src = this.thumb;
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
      none.textContent = this.uploading ? "Preview after upload" : "No preview";
    }
    const progress = /** @type {HTMLProgressElement} */ (li.querySelector("progress"));
    const stateText = /** @type {HTMLElement} */ (li.querySelector(".attach-state-text"));
    const percent = Math.round(this.progress * 100);
    progress.hidden = !this.uploading;
    if (this.state === "uploading") progress.value = percent;
    else progress.removeAttribute("value"); // indeterminate while waiting or processing
    stateText.textContent = {
      queued: this.file ? "Waiting to upload…" : "Getting the file back…",
      uploading: `Uploading… ${percent}%`,
      processing: "Uploaded; the server is preparing it…",
      done: "Uploaded",
      failed: `Upload failed: ${this.error}`,
      refused: `Refused: ${this.error}`,
    }[this.state];
    const retry = /** @type {HTMLButtonElement} */ (li.querySelector(".attach-retry"));
    retry.hidden = this.state !== "failed";
  }

  /**
   * Number the row, and name each button after its photo.
   * @param {number} n
   */
  number(n) {
    /** @type {HTMLElement} */ (this.item.querySelector(".attach-number")).textContent = `Photo ${n}`;
    this.item.querySelector(".attach-retry")?.setAttribute("aria-label", `Retry photo ${n}`);
    this.item.querySelector(".attach-remove")?.setAttribute("aria-label", `Remove photo ${n}`);
    for (const label of this.item.querySelectorAll("label")) {
      const base = label.textContent?.replace(/^Photo \d+: /, "") ?? "";
      label.textContent = base;
      const hidden = document.createElement("span");
      hidden.className = "visually-hidden";
      hidden.textContent = `Photo ${n}: `;
      label.prepend(hidden);
    }
  }
}
