// The reader's live page and the embed: follow the stream from the seq the server
// rendered the page at, and apply each event without moving what the reader is reading.
//
// - A new post slides in at the top when the reader is at the top. A reader who has
//   scrolled down gets a "N new updates" button instead, and nothing above them moves.
// - Edits replace a post in place with an "Updated HH:MM" mark, deletes remove it, pins
//   move it into the key events; the reader's place is kept through each of them.
// - One polite live region says "N new updates"; while the tab is hidden the title
//   counts them: "(3) Election night".
// - Every text value goes in with textContent. A post's HTML was sanitised by the
//   server against an allow-list, and is the same HTML the server put in the page
//   (its cards included: built by the server from escaped values). A card that arrives
//   later (post.embedded) replaces the post's body like an edit, without "Updated".

import { headParts, headline, isNewer, pageFilter, photoFigure, placeAmong, placeFor, postMatches,
  tagLinks, timeElement }
  from "./article.js";
import { allowedFrames, enhanceCards } from "./cards.js";
import { BulletinClient } from "./client.js";
import { keepTimesCurrent, localiseTimes } from "./times.js";

/** @typedef {import("./client.js").BulletinEvent} BulletinEvent */
/** @typedef {import("./article.js").Post} Post */

/**
 * @typedef {object} StreamInfo
 * @property {string} slug
 * @property {string} title
 * @property {string} description
 * @property {string} status
 * @property {number} seq
 * @property {string} [updated_at]
 */

// How far the feed's top may be above the viewport and still count as "at the top".
const TOP_SLACK_PX = 40;
const ANNOUNCE_DELAY_MS = 800;
const NEW_MARK_MS = 6000;

/**
 * Start the live behaviour on a server-rendered reader page or embed.
 * @param {HTMLElement} main the element carrying data-stream and data-seq
 * @param {{client?: BulletinClient}} [options]
 * @returns {{client: BulletinClient, stop: () => void}}
 */
export function startReader(main, options = {}) {
  const slug = /** @type {string} */ (main.dataset.stream);
  const embed = main.hasAttribute("data-embed");
  const olderPage = main.hasAttribute("data-older");
  const basePath = `/${embed ? "embed" : "live"}/${encodeURIComponent(slug)}`;
  const pagePath = `/live/${encodeURIComponent(slug)}`;
  // A page of one tag's updates or of the key events only keeps to it live.
  const filter = pageFilter(main);
  const filterQuery = [filter.tag ? `tag=${encodeURIComponent(filter.tag)}` : "",
    filter.pinned ? "pinned=true" : ""].filter(Boolean).join("&");
  const reduceMotion = window.matchMedia("(prefers-reduced-motion: reduce)");

  const feed = /** @type {HTMLElement} */ (main.querySelector("#feed"));
  const newButton = /** @type {HTMLButtonElement} */ (main.querySelector("#new-updates"));
  const announcer = /** @type {HTMLElement} */ (main.querySelector("#announcer"));
  const badge = /** @type {HTMLElement} */ (main.querySelector("#live-badge"));
  const empty = main.querySelector("#feed-empty");
  const keySection = main.querySelector("#key-events");
  const keyList = main.querySelector("#key-events-list");
  const title = main.querySelector("#story-title");
  const description = main.querySelector("#story-description");
  const updated = main.querySelector("#story-updated");

  let streamStatus = main.dataset.status ?? "live";
  let connection = "connecting";
  let everConnected = false;
  /** @type {Map<number, Post>} new posts held back while the reader is further down */
  const pending = new Map();
  let unseen = 0;
  const baseTitle = document.title;
  let announceTimer = 0;
  let announceCount = 0;

  // The page keeps the reader's place itself (see keepPlace), so the browser's own
  // scroll anchoring must not correct a second time.
  document.documentElement.style.overflowAnchor = "none";
  if (embed) openLinksOutside(main);
  // The players this page's policy allows, for the cards' "Load the original".
  const frames = allowedFrames(main);
  enhanceCards(main, frames);

  const stopTimes = keepTimesCurrent(main);
  const client = options.client ?? new BulletinClient({ url: location.origin });
  const since = Number(main.dataset.seq);
  const subscription = client.subscribe(slug, {
    since: Number.isFinite(since) ? since : null,
    // The server sends the other posts' events as stubs: seq without the post.
    filter: filterQuery ? filter : undefined,
    onEvent: apply,
    onReset: reload,
  });
  const stopStatus = client.on("status", (status) => {
    connection = status;
    main.dataset.connection = status;
    if (status === "live") everConnected = true;
    renderBadge();
  });

  newButton.addEventListener("click", revealPending);
  document.addEventListener("visibilitychange", onVisibility);
  main.querySelector("#load-older")?.addEventListener("click", loadOlder);

  // --- events ----------------------------------------------------------------------

  /** @param {BulletinEvent} event */
  function apply(event) {
    const op = event.op;
    // Every change to the story is an event, at the time the story last changed.
    showUpdated(event.at);
    if (event.filtered && event.post) {
      // A post this page does not show (now): an edit may have taken it out.
      // Nor in its key events: those are the filter's too.
      removePost(/** @type {Post} */ (event.post).id);
      updateKeyEvent(/** @type {Post} */ (event.post));
    } else if (op.startsWith("post.") && event.post) {
      const post = /** @type {Post} */ (event.post);
      // The post's state decides, not the op: a replayed post.created of a post deleted
      // since carries the tombstone (docs/events.md), and must not add an empty post.
      if (post.deleted || op === "post.deleted" || !postMatches(post, filter)) removePost(post.id);
      else if (op === "post.created") addPost(post);
      else if (articleFor(post.id) || pending.has(post.id)) updatePost(post);
      else if (filterQuery) insertPost(post);
      updateKeyEvent(post);
    } else if (op.startsWith("stream.") && event.stream_info) {
      updateStream(/** @type {StreamInfo} */ (event.stream_info));
    }
    // Ops this page does not know are ignored: new ones may be added.
  }

  /** @param {Post} post */
  function addPost(post) {
    if (articleFor(post.id)) {
      updatePost(post);
      return;
    }
    if (document.hidden) {
      unseen += 1;
      document.title = `(${unseen}) ${baseTitle}`;
    }
    if (!olderPage && atTop()) {
      const article = buildArticle(post);
      if (!document.hidden && !reduceMotion.matches) markNew(article, true);
      feed.prepend(article);
      afterFeedChange();
    } else {
      pending.set(post.id, post);
      renderNewButton();
    }
    announce(1);
  }

  /** @param {Post} post */
  function updatePost(post) {
    if (pending.has(post.id)) pending.set(post.id, post);
    const article = articleFor(post.id);
    if (article) keepPlace(() => fillArticle(article, post));
  }

  /**
   * A post that an edit or a pin brought into a filtered page: in its place newest first
   * (as the server lists them), if that place is on the page (an older one comes with
   * "Load older updates").
   * @param {Post} post
   */
  function insertPost(post) {
    const articles = /** @type {HTMLElement[]} */ ([...feed.querySelectorAll(":scope > article")]);
    const after = placeAmong(articles, post);
    const more = main.querySelector("#load-older") !== null;
    if (!after && more && articles.length) return;
    if (!after && !articles.length && olderPage) return;
    const first = articles[0];
    if (first && after === first && !atTop()) {
      pending.set(post.id, post);
      renderNewButton();
      return;
    }
    const article = buildArticle(post);
    keepPlace(() => feed.insertBefore(article, after ?? null));
    afterFeedChange();
  }

  /** @param {number} id */
  function removePost(id) {
    if (pending.delete(id)) renderNewButton();
    const article = articleFor(id);
    if (article) {
      keepPlace(() => article.remove(), article);
      afterFeedChange();
    }
  }

  /** @param {StreamInfo} info */
  function updateStream(info) {
    keepPlace(() => {
      if (title) title.textContent = info.title;
      if (description) {
        description.textContent = info.description;
        description.toggleAttribute("hidden", !info.description);
      }
    });
    streamStatus = info.status;
    renderBadge();
  }

  /** @param {{stream: StreamInfo, posts: Post[], pinned?: Post[]}} snapshot */
  function reload(snapshot) {
    updateStream(snapshot.stream);
    showUpdated(snapshot.stream.updated_at);
    pending.clear();
    renderNewButton();
    feed.replaceChildren(...snapshot.posts.filter((p) => !p.deleted && postMatches(p, filter))
      .map(buildArticle));
    if (keyList) {
      keyList.replaceChildren();
      for (const post of snapshot.pinned ?? snapshot.posts.filter((p) => p.pinned)) updateKeyEvent(post);
    }
    afterFeedChange();
  }

  /**
   * The header's "Updated HH:MM" follows the newest change (a replayed event is older).
   * @param {string | undefined} iso
   */
  function showUpdated(iso) {
    const time = updated?.querySelector("time");
    if (!updated || !time || !iso || !(Date.parse(iso) > Date.parse(time.dateTime))) return;
    time.dateTime = iso;
    time.textContent = iso;
    localiseTimes(updated);
  }

  // --- new updates -----------------------------------------------------------------

  function atTop() {
    return feed.getBoundingClientRect().top >= -TOP_SLACK_PX;
  }

  function renderNewButton() {
    const count = pending.size;
    newButton.hidden = count === 0;
    newButton.textContent = olderPage
      ? `${count} new ${count === 1 ? "update" : "updates"}: show the latest`
      : `↑ ${count} new ${count === 1 ? "update" : "updates"}`;
  }

  function revealPending() {
    if (olderPage) {
      location.assign(filterQuery ? `${basePath}?${filterQuery}` : basePath);
      return;
    }
    const posts = [...pending.values()].sort((a, b) => (isNewer(a, b) ? -1 : 1));
    pending.clear();
    renderNewButton();
    const articles = posts.filter((p) => !articleFor(p.id)).map(buildArticle);
    for (const article of articles) markNew(article, false);
    feed.prepend(...articles);
    afterFeedChange();
    const top = feed.getBoundingClientRect().top + window.scrollY - 16;
    window.scrollTo({ top: Math.max(0, top), behavior: reduceMotion.matches ? "auto" : "smooth" });
    articles[0]?.focus({ preventScroll: true });
  }

  /** @param {number} count */
  function announce(count) {
    announceCount += count;
    clearTimeout(announceTimer);
    announceTimer = window.setTimeout(() => {
      const n = announceCount;
      announceCount = 0;
      announcer.textContent = `${n} new ${n === 1 ? "update" : "updates"}`;
    }, ANNOUNCE_DELAY_MS);
  }

  function onVisibility() {
    if (!document.hidden) {
      unseen = 0;
      document.title = baseTitle;
    }
  }

  // --- status ----------------------------------------------------------------------

  function renderBadge() {
    let state = "live";
    let label = "Live";
    if (streamStatus === "ended") {
      state = "ended";
      label = "Ended";
    } else if (connection === "closed") {
      state = "reconnecting";
      label = "Disconnected";
    } else if (connection !== "live" && (everConnected || connection !== "connecting")) {
      state = "reconnecting";
      label = "Reconnecting…";
    }
    badge.dataset.state = state;
    badge.textContent = label;
  }

  // --- key events ------------------------------------------------------------------

  /** @param {Post} post */
  function updateKeyEvent(post) {
    if (!keyList || !keySection) return;
    const existing = /** @type {HTMLLIElement | null} */ (
      keyList.querySelector(`li[data-id="${post.id}"]`));
    keepPlace(() => {
      if (!post.pinned || post.deleted) {
        existing?.remove();
      } else {
        const item = existing ?? document.createElement("li");
        item.dataset.id = String(post.id);
        const link = document.createElement("a");
        link.href = articleFor(post.id) ? `#post-${post.id}` : `/live/${encodeURIComponent(slug)}/posts/${post.id}`;
        link.append(timeElement(post.created_at), " ");
        const text = document.createElement("span");
        text.className = "key-headline";
        text.textContent = headline(post);
        link.append(text);
        item.replaceChildren(link);
        if (!existing) keyList.insertBefore(item, placeFor(keyList, post));
        localiseTimes(item);
      }
      keySection.toggleAttribute("hidden", keyList.children.length === 0);
    });
  }

  // --- older updates ---------------------------------------------------------------

  /** @param {Event} event */
  async function loadOlder(event) {
    const link = /** @type {HTMLAnchorElement} */ (event.currentTarget);
    const cursor = link.dataset.cursor;
    if (!cursor) return;
    event.preventDefault();
    feed.setAttribute("aria-busy", "true");
    try {
      const query = filterQuery ? `${filterQuery}&` : "";
      const response = await fetch(`/api/streams/${encodeURIComponent(slug)}/posts?${query}before=${encodeURIComponent(cursor)}`,
        { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const page = await response.json();
      const articles = page.posts.filter((/** @type {Post} */ p) => !articleFor(p.id)).map(buildArticle);
      feed.append(...articles);
      afterFeedChange();
      if (page.next_cursor) {
        link.dataset.cursor = page.next_cursor;
        link.href = `${basePath}?${query}before=${page.next_cursor}`;
      } else {
        link.remove();
      }
      announcer.textContent = `${articles.length} older ${articles.length === 1 ? "update" : "updates"} loaded`;
      articles[0]?.focus();
    } catch {
      // The link still works without the script: follow it.
      location.assign(link.href);
    } finally {
      feed.setAttribute("aria-busy", "false");
    }
  }

  // --- building posts ----------------------------------------------------------------

  /** @param {number} id */
  function articleFor(id) {
    return /** @type {HTMLElement | null} */ (feed.querySelector(`#post-${id}`));
  }

  /** @param {Post} post */
  function buildArticle(post) {
    const article = document.createElement("article");
    article.id = `post-${post.id}`;
    article.className = "post";
    article.tabIndex = 0;
    article.dataset.id = String(post.id);
    article.setAttribute("aria-setsize", "-1");
    fillArticle(article, post);
    return article;
  }

  /**
   * @param {HTMLElement} article
   * @param {Post} post
   */
  function fillArticle(article, post) {
    article.classList.toggle("is-pinned", post.pinned);
    const meta = document.createElement("header");
    meta.className = "post-meta";
    meta.id = `post-${post.id}-meta`;
    const link = document.createElement("a");
    link.className = "post-time";
    link.href = `/live/${encodeURIComponent(slug)}/posts/${post.id}`;
    link.append(timeElement(post.created_at));
    meta.append(link);
    if (post.author && !post.contributors?.length) {
      const author = document.createElement("span");
      author.className = "post-author";
      author.textContent = post.author.name;
      meta.append(" ", author);
    }
    const mark = document.createElement("span");
    mark.className = "key-mark";
    mark.textContent = "Key event";
    mark.hidden = !post.pinned;
    meta.append(" ", mark);
    if (post.edited_at) {
      const updated = document.createElement("span");
      updated.className = "post-updated";
      updated.append("Updated ", timeElement(post.edited_at));
      meta.append(" ", updated);
    }
    const body = document.createElement("div");
    body.className = "post-body";
    body.innerHTML = post.html ?? "";
    article.setAttribute("aria-labelledby", post.headline
      ? `post-${post.id}-meta post-${post.id}-headline` : `post-${post.id}-meta`);
    article.replaceChildren(meta, ...headParts(post), body, ...(post.media ?? []).map(photoFigure),
      ...tagLinks(post, pagePath));
    enhanceCards(body, frames);
    if (embed) openLinksOutside(article);
    localiseTimes(article);
  }

  /**
   * @param {HTMLElement} article
   * @param {boolean} slide
   */
  function markNew(article, slide) {
    article.classList.add("is-new");
    if (slide) article.classList.add("slide-in");
    setTimeout(() => article.classList.remove("is-new", "slide-in"), NEW_MARK_MS);
  }

  function afterFeedChange() {
    const articles = feed.querySelectorAll(":scope > article");
    articles.forEach((article, index) => article.setAttribute("aria-posinset", String(index + 1)));
    empty?.toggleAttribute("hidden", articles.length > 0);
  }

  /**
   * Run a change to the page without moving what the reader sees: the first post that
   * starts inside the viewport stays where it is on screen.
   * @param {() => void} change
   * @param {Element} [removing] a post that the change removes: never the anchor
   */
  function keepPlace(change, removing) {
    if (window.scrollY === 0) {
      change();
      return;
    }
    let anchor = null;
    for (const article of feed.children) {
      if (article === removing) continue;
      if (article.getBoundingClientRect().top >= 0) {
        anchor = article;
        break;
      }
    }
    const before = anchor?.getBoundingClientRect().top ?? 0;
    change();
    if (anchor?.isConnected) {
      const moved = anchor.getBoundingClientRect().top - before;
      if (moved !== 0) window.scrollBy(0, moved);
    }
  }

  return {
    client,
    stop() {
      subscription.unsubscribe();
      stopStatus();
      stopTimes();
      document.removeEventListener("visibilitychange", onVisibility);
    },
  };
}

/**
 * Inside another site's iframe, links open in a new tab rather than inside the frame.
 * @param {ParentNode} root
 */
function openLinksOutside(root) {
  for (const link of root.querySelectorAll("a[href]")) {
    link.setAttribute("target", "_blank");
    link.setAttribute("rel", "noopener");
  }
}

const page = document.querySelector("main[data-stream]");
if (page instanceof HTMLElement) startReader(page);
