// The editor desk, enhanced. Every action already works as a plain form POST; this module
// makes the stream page quick under pressure: a live preview rendered by the server (so
// it is exactly what readers get), Ctrl/Cmd+Enter to post, the draft kept in
// localStorage as it is typed, posting with fetch and an Idempotency-Key that is kept
// until the post is known to be published (so a retry never posts twice), edit in
// place, delete after a confirm step, pin/unpin, and the post list kept live with the
// Bulletin client. Written against docs/api.md and docs/editor.md.

import { BulletinClient } from "./client.js";
import { localiseTimes } from "./times.js";

const PREVIEW_DELAY_MS = 250;
const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute("content") ?? "";

/**
 * @typedef {{id: number, body: string | null, html: string | null, pinned: boolean,
 *            author: {id: number, name: string} | null, created_at: string,
 *            edited_at: string | null, deleted: boolean}} Post
 * @typedef {{ok: boolean, status: number, data: any, retryAfter: string | null}} Result
 * @typedef {{body: string, pinned: boolean, key: string}} Draft
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
      return draft && typeof draft.body === "string" && typeof draft.key === "string"
        ? draft : null;
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
    const pin = /** @type {HTMLFormElement} */ (li.querySelector('form[data-action="pin"]'));
    /** @type {HTMLInputElement} */ (pin.elements.namedItem("pinned")).value =
      post.pinned ? "0" : "1";
    /** @type {HTMLButtonElement} */ (pin.querySelector("button")).textContent =
      post.pinned ? "Unpin" : "Pin";
    localiseTimes(li);
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
   * @param {{body?: string, pinned?: boolean}} changes
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
    form.append(label, textarea, row, error);

    const close = () => {
      form.remove();
      body.hidden = false;
      actions.hidden = false;
      /** @type {HTMLElement | null} */ (li.querySelector('[data-action="edit"]'))?.focus();
    };
    const submit = async () => {
      if (save.disabled) return;
      if (!textarea.value.trim()) {
        showError(error, "Write something, or delete the post instead.");
        return;
      }
      save.disabled = true;
      save.textContent = "Saving…";
      const ok = await this.change(li, { body: textarea.value }, "Post updated.", error);
      save.disabled = false;
      save.textContent = "Save";
      if (ok) close();
    };
    form.addEventListener("submit", (event) => { event.preventDefault(); submit(); });
    onCtrlEnter(textarea, submit);
    textarea.addEventListener("keydown", (event) => {
      if (event.key === "Escape") { event.preventDefault(); close(); }
    });
    cancel.addEventListener("click", close);
    body.hidden = true;
    actions.hidden = true;
    body.after(form);
    textarea.focus();
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
 * The compose form: preview, draft, posting with a stable idempotency key.
 * @param {HTMLFormElement} form
 * @param {PostList | null} posts
 */
function setUpCompose(form, posts) {
  const slug = form.dataset.stream ?? "";
  const textarea = /** @type {HTMLTextAreaElement} */ (byId("compose-body"));
  const pinned = /** @type {HTMLInputElement} */ (byId("compose-pinned"));
  const button = /** @type {HTMLButtonElement} */ (byId("compose-submit"));
  const error = /** @type {HTMLElement} */ (byId("compose-error"));
  const status = /** @type {HTMLElement} */ (byId("compose-status"));
  const previewBox = /** @type {HTMLElement} */ (byId("preview-box"));
  const preview = /** @type {HTMLElement} */ (byId("preview"));
  const keyField = /** @type {HTMLInputElement} */ (form.elements.namedItem("idempotency_key"));
  const drafts = new DraftStore(slug);

  // The key belongs to the draft: it changes only once the draft is published.
  const saved = drafts.load();
  let key = saved?.key || keyField.value || newKey();
  if (saved && saved.body && !textarea.value) {
    textarea.value = saved.body;
    pinned.checked = saved.pinned;
    status.textContent = "Your unsent draft was restored.";
  }
  keyField.value = key;
  const save = () => {
    if (textarea.value) drafts.save({ body: textarea.value, pinned: pinned.checked, key });
    else drafts.clear();
  };

  let busy = false;
  let previewTimer = 0;
  let previewRound = 0;
  const updatePreview = async () => {
    const text = textarea.value;
    const round = ++previewRound;
    if (!text.trim()) {
      previewBox.hidden = true;
      preview.replaceChildren();
      return;
    }
    try {
      const result = await request("POST", "/editor/preview", { body: text });
      if (round !== previewRound || !result.ok) return;
      // Rendered and sanitised by the server, exactly as it will be published.
      preview.innerHTML = result.data.html;
      previewBox.hidden = false;
    } catch { /* the preview waits for the next keystroke */ }
  };
  const schedulePreview = () => {
    clearTimeout(previewTimer);
    previewTimer = window.setTimeout(updatePreview, PREVIEW_DELAY_MS);
  };

  textarea.addEventListener("input", () => {
    if (!busy && status.textContent) status.textContent = "";
    save();
    schedulePreview();
  });
  pinned.addEventListener("change", save);
  if (textarea.value) { save(); schedulePreview(); }

  const post = async () => {
    if (busy) return;
    const body = textarea.value;
    if (!body.trim()) {
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
    try {
      const result = await request("POST", `/api/streams/${encodeURIComponent(slug)}/posts`,
        { body, pinned: pinned.checked }, { "Idempotency-Key": key });
      if (result.ok) {
        posts?.apply(result.data);
        textarea.value = "";
        pinned.checked = false;
        key = newKey();
        keyField.value = key;
        drafts.clear();
        previewBox.hidden = true;
        preview.replaceChildren();
        status.textContent = "Posted.";
      } else if (result.data?.error?.code === "idempotency_key_reused") {
        // An earlier try of this draft was published before the text was changed.
        key = newKey();
        keyField.value = key;
        save();
        status.textContent = "";
        showError(error, "An earlier try of this post was published (see the list) before " +
          "the text changed. Post again to publish this text as a new post.");
      } else {
        status.textContent = "";
        showError(error, `Not posted: ${failureText(result)} Your text is kept.`);
      }
    } catch {
      status.textContent = "";
      showError(error, `Not posted: ${NETWORK_FAILURE} Your text is kept.`);
    } finally {
      busy = false;
      button.disabled = false;
      textarea.readOnly = false;
      textarea.focus();
    }
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); post(); });
  onCtrlEnter(form, post);
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
  if (posts) {
    byId("posts-heading")?.setAttribute("tabindex", "-1");
    followLive(posts);
  }
}

main();
