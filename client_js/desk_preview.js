// The desk's previews of a post, under the compose form and under a post edited in place:
// the HTML the server rendered for the text (exactly what readers get), the photos as
// readers will see them, and what the server noticed about the text.

/**
 * @typedef {import("./desk_photos.js").PhotoTray} PhotoTray
 * @typedef {{code: string, message: string}} Notice
 */

export const PREVIEW_DELAY_MS = 250;

/**
 * Show what the server said about a text it previewed (an image it removed, say), only
 * when that changed, so that the live region speaks once per change.
 * @param {HTMLElement} container a role="status" element
 * @param {unknown} notices
 */
export function showNotices(container, notices) {
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
export function showPreviewPhotos(container, tray) {
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
export function buildPreview(id) {
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
