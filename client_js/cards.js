// Cards of linked videos and social posts, as the server builds them (server/core/cards.py):
// readable without any script and without any request to the provider. On the reader's
// click, "Load the original" puts the provider's own player or widget in a sandboxed
// frame: until then nothing on the page contacts a third party.
//
// The frame's address comes from the card's data-embed-url, which the server built from
// the link's validated parts; it is loaded only over https and only from an origin the
// page's Content-Security-Policy names (the page lists them in data-frames). A card that
// arrives live from a provider the page did not show at first keeps its link to the
// original instead: its player would be refused here.

const SANDBOX = "allow-scripts allow-same-origin allow-popups allow-popups-to-escape-sandbox allow-presentation";

/**
 * The frame origins a page allows, from its main element's data-frames.
 * @param {HTMLElement | null} main
 * @returns {Set<string>}
 */
export function allowedFrames(main) {
  return new Set((main?.dataset.frames ?? "").split(" ").filter(Boolean));
}

/**
 * Offer "Load the original" on every card under `root` whose player the page allows.
 * Running it again on the same cards does nothing more.
 * @param {ParentNode} root
 * @param {ReadonlySet<string>} origins
 */
export function enhanceCards(root, origins) {
  for (const card of root.querySelectorAll("figure.link-card[data-embed-url]")) {
    if (!(card instanceof HTMLElement) || card.querySelector(":scope > .card-load, :scope > .card-frame")) continue;
    const url = playerUrl(card.dataset.embedUrl);
    if (!url || !origins.has(url.origin)) continue;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "card-load";
    button.textContent = `Load the original from ${card.dataset.providerName ?? "the provider"}`;
    button.addEventListener("click", () => loadOriginal(card, url, button));
    card.append(button);
  }
}

/**
 * @param {string | undefined} value
 * @returns {URL | null}
 */
function playerUrl(value) {
  if (!value) return null;
  try {
    const url = new URL(value);
    return url.protocol === "https:" ? url : null;
  } catch {
    return null;
  }
}

/**
 * Replace the card's preview with the provider's own player, in a sandboxed frame.
 * @param {HTMLElement} card
 * @param {URL} url
 * @param {HTMLButtonElement} button
 */
function loadOriginal(card, url, button) {
  const frame = document.createElement("iframe");
  frame.className = "card-frame";
  frame.dataset.shape = card.dataset.embedShape ?? "post";
  frame.title = card.dataset.embedTitle ?? "The original post";
  frame.setAttribute("sandbox", SANDBOX);
  frame.allow = "autoplay; encrypted-media; picture-in-picture; fullscreen";
  frame.referrerPolicy = "strict-origin-when-cross-origin";
  frame.src = url.href;
  card.classList.add("is-loaded");
  button.replaceWith(frame);
  frame.focus();
}
