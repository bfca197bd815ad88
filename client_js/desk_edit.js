// Edit in place on the desk's post list: the post's text and photos in a form under it,
// with the same preview as the compose box, saved as PATCH /api/posts/{id}.
//
// Two editors may fix the same post at once. The save always sends If-Match with the
// revision the editing started from; if someone else saved in between, the server
// changes nothing and answers 412 with the post as it is now. The form then shows their
// text beside the editor's own and lets them choose: save theirs over (If-Match is then
// the revision they have now seen), take theirs, or copy from one into the other by hand.
// Where their headline, tags, bylines or photos differ from the editor's, the form lists
// both; "Take theirs" takes those too. The editor's own text stays on the screen until
// they save or cancel.

import { announce, failureText, NETWORK_FAILURE, onCtrlEnter, request, showError }
  from "./desk_common.js";
import { PhotoTray, photosReady } from "./desk_photos.js";
import { PostFields } from "./desk_fields.js";
import { EDITING_EVENT } from "./desk_presence.js";
import { buildPreview, PREVIEW_DELAY_MS, showNotices, showPreviewPhotos } from "./desk_preview.js";
import { localiseTimes } from "./times.js";

/**
 * @typedef {import("./desk_posts.js").Post} Post
 * @typedef {import("./desk_posts.js").PostList} PostList
 * @typedef {import("./desk_posts.js").PhotoRef} PhotoRef
 */

/**
 * The If-Match header for a revision, or none when the page does not know it.
 * @param {number} revision
 * @returns {Record<string, string>}
 */
export function ifMatch(revision) {
  return Number.isInteger(revision) && revision > 0 ? { "If-Match": `"r${revision}"` } : {};
}

/**
 * @param {string} tag
 * @param {string} className
 * @param {string} [text]
 */
function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * Whether the post already is what a save would make it.
 * @param {Post} post
 * @param {Changes} changes
 */
function sameAs(post, changes) {
  /** @param {{id: number, alt: string, caption: string, credit: string}[]} list */
  const words = (list) => JSON.stringify(list.map((m) => [m.id, m.alt, m.caption, m.credit]));
  const people = (post.contributors ?? []).map((c) => c.id);
  return post.body === changes.body
    && (!changes.media || words(changes.media) === words(post.media ?? []))
    && (post.headline ?? "") === changes.headline
    && JSON.stringify(post.tags ?? []) === JSON.stringify(changes.tags)
    && JSON.stringify(people) === JSON.stringify(changes.contributors);
}

/**
 * @typedef {{body: string, media?: PhotoRef[]} & import("./desk_fields.js").FieldValues} Changes
 * @typedef {{field: string, theirs: string, yours: string}} Difference
 */

/**
 * Where the other editor's saved post differs from what this editor would save, apart
 * from the text (shown side by side): headline, tags, bylines and photos, in words.
 * @param {Post} current their post, as the server has it now
 * @param {Changes} changes what this editor's save would send
 * @param {Map<number, string>} names people's names, by id, for this editor's bylines
 * @returns {Difference[]}
 */
export function differences(current, changes, names) {
  /** @type {Difference[]} */
  const out = [];
  const none = "(none)";
  const headline = current.headline ?? "";
  if (headline !== changes.headline) {
    out.push({ field: "Headline", theirs: headline || none, yours: changes.headline || none });
  }
  const theirTags = current.tags ?? [];
  if (JSON.stringify(theirTags) !== JSON.stringify(changes.tags)) {
    out.push({ field: "Tags", theirs: theirTags.join(", ") || none,
               yours: changes.tags.join(", ") || none });
  }
  const people = current.contributors ?? [];
  if (JSON.stringify(people.map((p) => p.id)) !== JSON.stringify(changes.contributors)) {
    out.push({ field: "By", theirs: people.map((p) => p.name).join(", ") || none,
               yours: changes.contributors.map((id) => names.get(id) ?? `#${id}`).join(", ")
                 || none });
  }
  if (changes.media) {
    /** @param {{id: number, alt?: string, caption?: string, credit?: string}[]} list */
    const words = (list) => JSON.stringify(list.map((m) => [m.id, m.alt, m.caption, m.credit]));
    const theirs = current.media ?? [];
    if (words(theirs) !== words(changes.media)) {
      /** @param {number} n */
      const count = (n) => (n === 0 ? "no photos" : n === 1 ? "1 photo" : `${n} photos`);
      const same = theirs.length === changes.media.length;
      out.push({ field: "Photos",
                 theirs: count(theirs.length) + (same ? " (other order or words)" : ""),
                 yours: count(changes.media.length) });
    }
  }
  return out;
}

/**
 * The list of differences shown in a conflict, as a table: what, theirs, yours.
 * @param {Difference[]} rows
 * @param {string} yoursHeading
 * @returns {HTMLTableElement}
 */
function differenceTable(rows, yoursHeading) {
  const table = /** @type {HTMLTableElement} */ (element("table", "edit-differences"));
  table.createCaption().textContent = "Also different:";
  const head = table.createTHead().insertRow();
  for (const text of ["", "Theirs", yoursHeading]) {
    const th = element("th", "", text);
    th.setAttribute("scope", "col");
    head.append(th);
  }
  const body = table.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    const th = element("th", "", row.field);
    th.setAttribute("scope", "row");
    tr.append(th, element("td", "", row.theirs), element("td", "", row.yours));
  }
  return table;
}

/**
 * The headline, tags and bylines fields for a post being edited: a copy of the compose
 * form's (editor/_fields.html, in the page's template), with ids of its own, filled from
 * the post.
 * @param {HTMLLIElement} li
 * @returns {PostFields | null}
 */
function fieldsFor(li) {
  const template = document.getElementById("post-fields-template");
  if (!(template instanceof HTMLTemplateElement)) return null;
  const copy = /** @type {DocumentFragment} */ (template.content.cloneNode(true));
  const root = /** @type {HTMLElement} */ (copy.firstElementChild);
  const prefix = `edit-${li.dataset.id}`;
  for (const node of root.querySelectorAll("[id], [for], [aria-describedby]")) {
    for (const name of ["id", "for", "aria-describedby"]) {
      const value = node.getAttribute(name);
      if (value) node.setAttribute(name, value.replaceAll("edit-__ID__", prefix));
    }
  }
  root.id = `${prefix}-fields`;
  const fields = new PostFields(root);
  /** @param {string | undefined} raw */
  const list = (raw) => { try { return JSON.parse(raw ?? "[]"); } catch { return []; } };
  fields.set({ headline: li.dataset.headline ?? "", tags: list(li.dataset.tags),
               contributors: list(li.dataset.contributors) });
  return fields;
}

/**
 * Open the editor under a post (or focus it when it is open already).
 * @param {PostList} posts
 * @param {HTMLLIElement} li
 */
export function openEditor(posts, li) {
  const existing = /** @type {HTMLTextAreaElement | null} */ (li.querySelector(".post-editor textarea"));
  if (existing) {
    existing.focus();
    return;
  }
  const id = li.dataset.id;
  // What the editor started from: a save from it must not overwrite a later one.
  let revision = Number(li.dataset.revision);
  const body = /** @type {HTMLElement} */ (li.querySelector(".post-body"));
  const thumbs = /** @type {HTMLElement | null} */ (li.querySelector(".post-photos"));
  const actions = /** @type {HTMLElement} */ (li.querySelector(".post-actions"));
  const form = /** @type {HTMLFormElement} */ (element("form", "post-editor"));
  const mine = element("div", "edit-side");
  const label = /** @type {HTMLLabelElement} */ (element("label", "", "Edit post"));
  label.htmlFor = `edit-${id}`;
  const textarea = /** @type {HTMLTextAreaElement} */ (element("textarea", ""));
  textarea.id = `edit-${id}`;
  textarea.rows = 5;
  textarea.value = li.dataset.body ?? "";
  mine.append(label, textarea);
  const sides = element("div", "edit-sides");
  sides.append(mine);
  const fields = fieldsFor(li);
  const photos = element("div", "attach");
  const preview = buildPreview(`edit-${id}-preview`);
  const row = element("div", "compose-row");
  const save = /** @type {HTMLButtonElement} */ (element("button", "primary", "Save"));
  save.type = "submit";
  const cancel = /** @type {HTMLButtonElement} */ (element("button", "", "Cancel"));
  cancel.type = "button";
  row.append(save, cancel);
  const error = element("p", "error-message");
  error.setAttribute("role", "alert");
  error.hidden = true;
  const status = element("p", "hint edit-status");
  status.setAttribute("role", "status");
  form.append(sides, ...(fields ? [fields.root] : []), photos, row, error, status,
              preview.box);

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
                                       slug: posts.list.dataset.stream ?? "",
                                       onChange: schedulePreview });
  // Until the post's photos are known, a save leaves them as they are.
  let photosKnown = false;
  tray.setLoading(true);
  posts.photosOf(li).then((media) => {
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

  // --- a conflict: someone else saved first ----------------------------------------------

  /** @type {HTMLElement[]} */
  let conflict = [];
  /** What a save would send now. @returns {Changes} */
  const changesNow = () => {
    /** @type {Changes} */
    const changes = { body: textarea.value, ...(fields?.values() ?? {
      headline: li.dataset.headline ?? "", tags: [], contributors: [] }) };
    if (photosKnown) changes.media = tray.refs();
    return changes;
  };

  /**
   * Show their version beside the editor's own; a save from now on is made over theirs.
   * @param {Post} current
   * @param {Changes} changes what the refused save sent
   */
  const showConflict = (current, changes) => {
    revision = current.revision;
    for (const part of conflict) part.remove();
    const notice = element("div", "edit-conflict");
    const heading = element("p", "edit-conflict-title",
                            "Someone else saved this post while you were editing.");
    const when = /** @type {HTMLTimeElement} */ (
      element("time", "", current.edited_at ?? current.created_at));
    when.dateTime = current.edited_at ?? current.created_at;
    const explain = element("p", "hint");
    explain.append("Their version (saved ", when, ") is shown with yours; nothing of yours " +
      "was saved yet. Keep yours, take theirs, or copy what you need from one into the " +
      "other, then save.");
    notice.append(heading, explain);
    const names = fields?.names() ?? new Map();
    const rows = differences(current, changes, names);
    if (rows.length) notice.append(differenceTable(rows, "Yours"));
    const side = element("div", "edit-side edit-theirs");
    const theirsLabel = /** @type {HTMLLabelElement} */ (element("label", "", "Their version"));
    theirsLabel.htmlFor = `edit-${id}-theirs`;
    const theirs = /** @type {HTMLTextAreaElement} */ (element("textarea", ""));
    theirs.id = `edit-${id}-theirs`;
    theirs.rows = 5;
    theirs.readOnly = true;
    theirs.value = current.body ?? "";
    side.append(theirsLabel, theirs);
    const choices = element("div", "compose-row edit-choices");
    const keepMine = /** @type {HTMLButtonElement} */ (
      element("button", "", "Keep mine and save over theirs"));
    keepMine.type = "button";
    const takeTheirs = /** @type {HTMLButtonElement} */ (element("button", "", "Take theirs"));
    takeTheirs.type = "button";
    choices.append(keepMine, takeTheirs);
    label.textContent = "Your version";
    sides.classList.add("is-conflict");
    sides.before(notice);
    sides.append(side);
    sides.after(choices);
    conflict = [notice, side, choices];
    localiseTimes(notice);
    keepMine.addEventListener("click", () => { submit(); });
    takeTheirs.addEventListener("click", () => {
      // Theirs goes in the box; the editor's text moves to the other side, still there to
      // copy from until the editor closes.
      const own = changesNow();
      textarea.value = current.body ?? "";
      theirs.value = own.body;
      theirsLabel.textContent = "Your earlier version (not saved)";
      heading.textContent = "Their version is in the box now.";
      explain.textContent = "Yours is beside it until you close the editor. Save to keep " +
        "their version as it is, edit it first, or Cancel.";
      // Their headline, tags and bylines too; the editor's earlier ones stay listed.
      fields?.set({ headline: current.headline ?? "", tags: current.tags ?? [],
                    contributors: current.contributors ?? [] });
      if (photosKnown) tray.show(current.media ?? []);
      const table = notice.querySelector(".edit-differences");
      if (table) table.replaceWith(differenceTable(rows, "Your earlier (not saved)"));
      choices.remove();
      textarea.focus();
      schedulePreview();
    });
    posts.fill(li, current);
    showError(error, "");
    status.textContent = "Not saved: someone else changed this post first.";
    theirs.focus();
  };

  // --- saving ------------------------------------------------------------------------------

  /**
   * PATCH the post from the revision this editor started from.
   * @param {Changes} changes
   * @returns {Promise<boolean>} whether it was saved
   */
  const send = async (changes) => {
    li.classList.add("is-busy");
    try {
      const result = await request("PATCH", `/api/posts/${id}`, changes, ifMatch(revision));
      const current = result.data?.error?.details?.post;
      if (result.status === 412 && current) {
        // A save whose answer was lost and then retried comes back as its own conflict.
        if (sameAs(current, changes)) {
          posts.fill(li, current);
          announce("Post updated.");
          return true;
        }
        showConflict(current, changes);
        return false;
      }
      if (!result.ok) {
        showError(error, failureText(result));
        return false;
      }
      posts.fill(li, result.data);
      announce("Post updated.");
      return true;
    } catch {
      showError(error, NETWORK_FAILURE);
      return false;
    } finally {
      li.classList.remove("is-busy");
    }
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
    const ok = await send(changesNow());
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
