// The editor desk, enhanced. Every action already works as a plain form POST; this module
// makes the stream page quick under pressure: a live preview rendered by the server (so
// it is exactly what readers get), Ctrl/Cmd+Enter to post, the draft kept in
// localStorage as it is typed, posting with fetch and an Idempotency-Key that is kept
// until the post is known to be published (so a retry never posts twice), photos
// (picked, dropped or pasted, uploaded at once, kept with the draft), edit in place,
// delete after a confirm step, pin/unpin, and the post list kept live with the Bulletin
// client. Written against docs/api.md and docs/editor.md.
//
// This is the desk pages' script: the compose form and its draft, following the stream
// live, and the small things on every desk page. The post list is in desk_posts.js, the
// photos in desk_photos.js, the previews in desk_preview.js, and what they all share in
// desk_common.js.

import { BulletinClient } from "./client.js";
import { isStoredPhoto } from "./desk_attachment.js";
import { byId, failureText, NETWORK_FAILURE, newKey, onCtrlEnter, request, requestOnce,
  showError } from "./desk_common.js";
import { ServerDraft } from "./desk_drafts.js";
import { PostFields } from "./desk_fields.js";
import { setUpPersonPhotos } from "./desk_people.js";
import { PhotoTray, photosReady } from "./desk_photos.js";
import { PostList } from "./desk_posts.js";
import { DeskPresence } from "./desk_presence.js";
import { DeskQueue } from "./desk_queue.js";
import { PREVIEW_DELAY_MS, showNotices, showPreviewPhotos } from "./desk_preview.js";
import { PendingFiles } from "./desk_uploads.js";
import { localiseTimes } from "./times.js";

/**
 * @typedef {import("./desk_attachment.js").StoredPhoto} StoredPhoto
 * @typedef {import("./desk_fields.js").FieldValues} FieldValues
 * @typedef {{body: string, pinned: boolean, key: string, photos?: StoredPhoto[],
 *   fields?: FieldValues}} Draft
 */

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
      const f = draft.fields;
      draft.fields = f && typeof f.headline === "string" && Array.isArray(f.tags) &&
        Array.isArray(f.contributors) ? f : undefined;
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

// --- compose -----------------------------------------------------------------------------

/**
 * The compose form: preview, draft, photos, posting with a stable idempotency key.
 * @param {HTMLFormElement} form
 * @param {PostList | null} posts
 * @param {DeskQueue} queue
 */
function setUpCompose(form, posts, queue) {
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
  const fields = new PostFields(/** @type {HTMLElement} */ (byId("compose-fields")));
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
  /** @returns {Draft | null} the draft in the form, null when it is empty */
  const current = () => (textarea.value || tray.count() || fields.filled()
    ? { body: textarea.value, pinned: pinned.checked, key, photos: tray.stored(),
        fields: fields.values() } : null);
  const save = () => {
    if (restoring) return;
    const draft = current();
    if (draft) drafts.save(draft);
    else drafts.clear();
    server.changed(draft);
  };
  // The draft on the server too, for the editor's other devices (desk_drafts.js).
  const server = new ServerDraft(slug, status, {
    apply(draft) {
      restoring = true;
      textarea.value = draft?.body ?? "";
      pinned.checked = draft?.pinned ?? false;
      fields.set(draft?.fields ?? {});
      tray.clear();
      tray.restore(draft?.photos ?? []);
      key = draft?.key || newKey();
      keyField.value = key;
      restoring = false;
      save();
      schedulePreview();
      photosChanged();
    },
    rekey() { key = newKey(); keyField.value = key; save(); },
  });
  const savedPhotos = saved?.photos ?? [];
  if (saved && (saved.body || savedPhotos.length) && !textarea.value) {
    textarea.value = saved.body;
    pinned.checked = saved.pinned;
    if (saved.fields) fields.set(saved.fields);
    tray.restore(savedPhotos);
    const n = savedPhotos.length;
    status.textContent = `Your unsent draft was restored${
      n ? `, with ${n === 1 ? "its photo" : `its ${n} photos`}` : ""}.`;
  }
  restoring = false;
  keyField.value = key;
  server.start(current(), Boolean(form.dataset.serverDraft));

  let busy = false;
  let waiting = false;
  let cancelled = false;
  textarea.addEventListener("input", () => {
    if (!busy && !waiting && status.textContent) status.textContent = "";
    save();
    schedulePreview();
  });
  pinned.addEventListener("change", save);
  fields.onChange(save);
  if (textarea.value || tray.count()) { save(); schedulePreview(); photosChanged(); }

  waitCancel.addEventListener("click", () => {
    cancelled = true;
    tray.wake();
  });

  const kept = () => (tray.count() ? "Your text and photos are kept." : "Your text is kept.");
  const post = async () => {
    if (busy || waiting) return;
    const body = textarea.value;
    // A photo with its caption is a post of its own; otherwise a post needs text.
    if (!body.trim() && !tray.count()) {
      showError(error, "Write something or add a photo to post.");
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
    if (waited && !sent.trim() && !tray.count()) {
      status.textContent = "";
      showError(error, "Write something or add a photo to post.");
      textarea.focus();
      return;
    }
    busy = true;
    save();
    showError(error, "");
    status.textContent = queue.fields().publish_at ? "Scheduling…" : "Posting…";
    button.disabled = true;
    textarea.readOnly = true;
    tray.lock(true);
    fields.lock(true);
    try {
      const result = await requestOnce("POST", `/api/streams/${encodeURIComponent(slug)}/posts`,
        { body: sent, pinned: pinned.checked, media: tray.refs(), ...fields.values(),
          ...queue.fields() }, key, () => {
          status.textContent = "No answer from the server: checking whether it was posted…";
        });
      const waits = result?.ok ? queue.accepted(result.data) : null;
      if (!result) {
        status.textContent = "";
        showError(error, `Not posted: ${NETWORK_FAILURE} ${kept()}`);
      } else if (result.ok) {
        if (!waits) posts?.apply(result.data);
        textarea.value = "";
        pinned.checked = false;
        fields.clear();
        key = newKey();
        keyField.value = key;
        tray.lock(false);
        tray.clear();
        drafts.clear();
        server.posted();
        previewBox.hidden = true;
        preview.replaceChildren();
        previewPhotos.replaceChildren();
        delete previewPhotos.dataset.shown;
        showNotices(previewNotices, []);
        // A replay is the server's answer to an earlier try: the post went out once.
        status.textContent = waits ?? (result.replayed
          ? "Posted. (It had gone through before its answer was lost: it is in the list once.)"
          : "Posted.");
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
    } finally {
      busy = false;
      button.disabled = false;
      textarea.readOnly = false;
      tray.lock(false);
      fields.lock(false);
      textarea.focus();
    }
  };
  // post() says what is missing itself: a photo without text is a post of its own.
  form.noValidate = true;
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
 * @param {DeskQueue} queue
 */
function followLive(posts, queue) {
  const slug = posts.list.dataset.stream ?? "";
  const since = Number(posts.list.dataset.seq);
  const liveStatus = byId("live-status");
  const presence = new DeskPresence(posts.list, {
    editors: byId("editors-here"), readers: byId("readers-now"), me: Number(posts.list.dataset.me) });
  const client = new BulletinClient({ url: location.origin });
  client.on("status", (/** @type {keyof typeof STATUS_TEXT} */ status) => {
    if (liveStatus) liveStatus.textContent = STATUS_TEXT[status] ?? "";
  });
  const sub = client.subscribe(slug, {
    since: Number.isFinite(since) ? since : null,
    onEvent(event) {
      if (event.post) { posts.apply(event.post); queue.seen(event.post); }
      else if (event.stream_info) showStream(event.stream_info);
      presence.refresh();
    },
    onReset(snapshot) {
      posts.replace(snapshot.posts);
      if (snapshot.stream) showStream(snapshot.stream);
      presence.refresh();
    },
    onPresence: (editors) => presence.show(editors),
    onReaders: (count) => presence.readers(count),
    onQueue: () => queue.refresh(),
    onError(failure) {
      if (liveStatus) liveStatus.textContent = `Live updates stopped: ${failure.message}`;
    },
  });
  presence.attach(sub);
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
  setUpPersonPhotos();
  const list = byId("posts");
  const template = byId("post-template");
  const posts = list instanceof HTMLOListElement && template instanceof HTMLTemplateElement
    ? new PostList(list, template) : null;
  const compose = byId("compose");
  const queue = new DeskQueue(document);
  if (compose instanceof HTMLFormElement) setUpCompose(compose, posts, queue);
  if (posts || compose) guardAgainstStrayDrops();
  if (posts) {
    byId("posts-heading")?.setAttribute("tabindex", "-1");
    followLive(posts, queue);
  }
}

main();
