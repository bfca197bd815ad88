// The list of posts on the desk's stream page, built from the server's own markup and kept
// live (editor.js feeds it the stream's events): edit in place (desk_edit.js), delete
// after a confirm step, pin and unpin.

import { announce, byId, failureText, NETWORK_FAILURE, request, showError }
  from "./desk_common.js";
import { ifMatch, openEditor } from "./desk_edit.js";
import { smallest } from "./desk_photos.js";
import { placeFor } from "./article.js";
import { localiseTimes } from "./times.js";

/**
 * @typedef {import("./article.js").Photo} Photo
 * @typedef {{id: number, body: string | null, html: string | null, pinned: boolean,
 *            author: {id: number, name: string} | null, created_at: string,
 *            edited_at: string | null, deleted: boolean, revision: number,
 *            media?: Photo[], headline?: string | null, tags?: string[],
 *            contributors?: {id: number, name: string}[]}} Post
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
    li.dataset.revision = String(post.revision);
    li.dataset.pinned = String(post.pinned);
    li.classList.toggle("is-pinned", post.pinned);
    const time = /** @type {HTMLTimeElement} */ (li.querySelector("time"));
    if (time.dateTime !== post.created_at) {
      time.dateTime = post.created_at;
      time.textContent = post.created_at;
    }
    /** @type {HTMLElement} */ (li.querySelector(".post-author")).textContent =
      post.author?.name ?? "";
    const people = post.contributors ?? [];
    li.dataset.headline = post.headline ?? "";
    li.dataset.tags = JSON.stringify(post.tags ?? []);
    li.dataset.contributors = JSON.stringify(people.map((c) => c.id));
    /** @type {[string, string][]} */
    const lines = [[".post-bylines", people.length ? `for ${people.map((c) => c.name).join(", ")}` : ""],
      [".post-headline-line", post.headline ?? ""],
      [".post-tag-list", (post.tags ?? []).map((t) => `#${t}`).join(" ")]];
    for (const [selector, text] of lines) {
      const line = /** @type {HTMLElement | null} */ (li.querySelector(selector));
      if (!line) continue;
      line.textContent = text;
      line.hidden = !text;
    }
    /** @type {HTMLElement} */ (li.querySelector(".post-flag")).hidden = !post.pinned;
    /** @type {HTMLElement} */ (li.querySelector(".post-edited")).hidden = !post.edited_at;
    const body = /** @type {HTMLElement} */ (li.querySelector(".post-body"));
    // The server rendered and sanitised this HTML; it is what readers see.
    if (body.innerHTML !== post.html) body.innerHTML = post.html ?? "";
    this.fillPhotos(li, body, post.media ?? []);
    // A contributor's desk has no buttons on published posts.
    const pin = /** @type {HTMLFormElement | null} */ (li.querySelector('form[data-action="pin"]'));
    if (pin) {
      /** @type {HTMLInputElement} */ (pin.elements.namedItem("pinned")).value =
        post.pinned ? "0" : "1";
      /** @type {HTMLButtonElement} */ (pin.querySelector("button")).textContent =
        post.pinned ? "Unpin" : "Pin";
    }
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
      openEditor(this, li);
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

  // --- delete with a confirm step ----------------------------------------------------------

  /** @param {HTMLLIElement} li */
  openConfirm(li) {
    const existing = /** @type {HTMLElement | null} */ (li.querySelector(".confirm button"));
    if (existing) {
      existing.focus();
      return;
    }
    const id = li.dataset.id;
    let revision = Number(li.dataset.revision);
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
        // Only the post as it was when the editor was asked: a change made since is
        // shown, and the question asked again.
        const result = await request("DELETE", `/api/posts/${id}`, undefined, ifMatch(revision));
        if (result.ok || result.status === 404) {
          li.remove();
          this.updateEmpty();
          announce("Post deleted.");
          byId("posts-heading")?.focus();
          return;
        }
        const current = result.data?.error?.details?.post;
        if (result.status === 412 && current) {
          this.fill(li, current);
          revision = current.revision;
          question.textContent = "Someone else changed this post meanwhile: it now reads as " +
            "shown above. Delete it anyway?";
          yes.disabled = false;
          no.focus();
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
