// The list of posts on the desk's stream page, built from the server's own markup and kept
// live (editor.js feeds it the stream's events): edit in place with a preview and the
// post's photos, delete after a confirm step, pin and unpin.

import { announce, byId, failureText, NETWORK_FAILURE, onCtrlEnter, request, showError }
  from "./desk_common.js";
import { PhotoTray, photosReady, smallest } from "./desk_photos.js";
import { EDITING_EVENT } from "./desk_presence.js";
import { placeFor } from "./desk_queue.js";
import { buildPreview, PREVIEW_DELAY_MS, showNotices, showPreviewPhotos } from "./desk_preview.js";
import { localiseTimes } from "./times.js";

/**
 * @typedef {import("./article.js").Photo} Photo
 * @typedef {{id: number, body: string | null, html: string | null, pinned: boolean,
 *            author: {id: number, name: string} | null, created_at: string,
 *            edited_at: string | null, deleted: boolean, media?: Photo[]}} Post
 * @typedef {{id: number, alt: string, caption: string, credit: string}} PhotoRef
 *   a photo as a post names it in POST and PATCH
 */

/** The list of posts on the stream page, built from the server's own markup. */
export class PostList {
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
      this.list.insertBefore(li, placeFor(this.list, post));
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
      li.dispatchEvent(new CustomEvent(EDITING_EVENT, { bubbles: true, detail: { editing: false } }));
      /** @type {HTMLElement | null} */ (li.querySelector('[data-action="edit"]'))?.focus();
    };
    let waiting = false;
    const submit = async () => {
      if (save.disabled || waiting) return;
      if (!textarea.value.trim() && !tray.count()) {
        showError(error, "Write something or keep a photo, or delete the post instead.");
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
    li.dispatchEvent(new CustomEvent(EDITING_EVENT, { bubbles: true, detail: { editing: true } }));
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
