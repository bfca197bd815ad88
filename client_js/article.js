// A post as readers see it, built the way the server's _story.html draws it: its
// bylines, headline, photos and tag links, whether a filtered page shows it, and where it
// goes in a list newest first. The reader page and the desk use it.

/**
 * @typedef {object} Post
 * @property {number} id
 * @property {string} stream
 * @property {{id: number, name: string} | null} author
 * @property {string | null} [headline]
 * @property {Person[]} [contributors]
 * @property {string[]} [tags]
 * @property {string | null} body
 * @property {string | null} html
 * @property {Photo[]} [media]
 * @property {boolean} pinned
 * @property {string} created_at
 * @property {string | null} edited_at
 * @property {boolean} deleted
 */

/**
 * @typedef {object} Person
 * @property {number} id
 * @property {string} name
 * @property {string} description
 * @property {{url: string, width: number, height: number,
 *   variants?: {width: number, url: string}[]} | null} photo
 */

/**
 * @typedef {object} Photo
 * @property {number} id
 * @property {string} alt
 * @property {string} caption
 * @property {string} credit
 * @property {number} width
 * @property {number} height
 * @property {{width: number, height: number, content_type: string, url: string}[]} variants
 */

const HEADLINE_CHARS = 110;
// The same as PHOTO_SIZES in server/web/templating.py.
const PHOTO_SIZES = "(min-width: 48rem) 44rem, calc(100vw - 2rem)";

/**
 * A post's photo, as the server's _story.html draws it.
 * @param {Photo} photo
 * @returns {HTMLElement}
 */
export function photoFigure(photo) {
  const figure = document.createElement("figure");
  figure.className = "photo";
  const img = document.createElement("img");
  img.width = photo.width;
  img.height = photo.height;
  img.alt = photo.alt;
  img.loading = "lazy";
  img.decoding = "async";
  /** @param {string} type */
  const srcset = (type) => photo.variants.filter((v) => v.content_type === type)
    .map((v) => `${v.url} ${v.width}w`).join(", ");
  const animation = photo.variants.find((v) => v.content_type === "image/gif");
  if (animation) {
    img.src = animation.url;
    figure.append(img);
  } else {
    const jpegs = photo.variants.filter((v) => v.content_type !== "image/webp");
    const fallback = (jpegs.length ? jpegs : photo.variants)
      .reduce((best, v) => Math.abs(v.width - 960) < Math.abs(best.width - 960) ? v : best);
    const picture = document.createElement("picture");
    const source = document.createElement("source");
    source.type = "image/webp";
    source.srcset = srcset("image/webp");
    source.sizes = PHOTO_SIZES;
    img.src = fallback.url;
    img.srcset = srcset("image/jpeg");
    img.sizes = PHOTO_SIZES;
    picture.append(source, img);
    figure.append(picture);
  }
  if (photo.caption || photo.credit) {
    const caption = document.createElement("figcaption");
    if (photo.caption) caption.append(element("span", "photo-caption", photo.caption));
    if (photo.credit) caption.append(" ", element("span", "photo-credit", photo.credit));
    figure.append(caption);
  }
  return figure;
}

/**
 * @param {string} iso
 * @returns {HTMLTimeElement}
 */
export function timeElement(iso) {
  const time = document.createElement("time");
  time.dateTime = iso;
  time.textContent = iso;
  return time;
}

/**
 * A post's headline, else its first line without Markdown, as the server makes it for
 * the key events.
 * @param {Post} post
 */
export function headline(post) {
  if (post.headline) return post.headline;
  for (const line of (post.body ?? "").split("\n")) {
    const text = line
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
      .replace(/^\s{0,3}(#{1,6}\s+|>\s?|[-*+]\s+|\d+[.)]\s+)|[*_`~]+/g, "")
      .replace(/\s+/g, " ")
      .trim();
    if (text) return shorten(text, HEADLINE_CHARS);
  }
  // A photo without text stands for itself: its caption, or what it shows.
  for (const photo of post.media ?? []) {
    const words = (photo.caption || photo.alt || "").replace(/\s+/g, " ").trim();
    if (words) return shorten(words, HEADLINE_CHARS);
  }
  return `Update ${post.id}`;
}

/**
 * @param {string} text
 * @param {number} limit
 */
function shorten(text, limit) {
  if (text.length <= limit) return text;
  let cut = text.slice(0, limit - 1);
  if (cut.slice(Math.floor(limit / 2)).includes(" ")) cut = cut.slice(0, cut.lastIndexOf(" "));
  return `${cut.replace(/[ ,.;:-]+$/, "")}…`;
}

/**
 * The parts of a post's article after its meta line and before its body: the bylines
 * and the headline.
 * @param {Post} post
 * @returns {HTMLElement[]}
 */
export function headParts(post) {
  const parts = [];
  const people = post.contributors ?? [];
  if (people.length) {
    const list = document.createElement("ul");
    list.className = "post-bylines";
    list.setAttribute("aria-label", "By");
    for (const person of people) {
      const item = element("li", "byline");
      if (person.photo) {
        const img = document.createElement("img");
        img.className = "byline-photo";
        img.src = person.photo.variants?.[0]?.url ?? person.photo.url;
        img.width = 32;
        img.height = 32;
        img.alt = "";
        img.loading = "lazy";
        img.decoding = "async";
        item.append(img);
      }
      item.append(element("span", "byline-name", person.name));
      if (person.description) item.append(" ", element("span", "byline-role", person.description));
      list.append(item);
    }
    parts.push(list);
  }
  if (post.headline) {
    const title = element("h3", "post-headline", post.headline);
    title.id = `post-${post.id}-headline`;
    parts.push(title);
  }
  return parts;
}

/**
 * The post's tags as links to the story filtered by each, or nothing.
 * @param {Post} post
 * @param {string} pagePath the story's page, e.g. /live/election
 * @returns {HTMLElement[]}
 */
export function tagLinks(post, pagePath) {
  const tags = post.tags ?? [];
  if (!tags.length) return [];
  const list = document.createElement("ul");
  list.className = "post-tags";
  list.setAttribute("aria-label", "Tags");
  for (const tag of tags) {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = `${pagePath}?tag=${encodeURIComponent(tag)}`;
    link.rel = "tag";
    link.textContent = `#${tag}`;
    item.append(link);
    list.append(item);
  }
  return [list];
}

/**
 * @typedef {object} PostFilter
 * @property {string | null} tag only posts with this tag
 * @property {boolean} pinned only key events
 */

/**
 * The filter a reader page was rendered with (data-tag, data-pinned on its main).
 * @param {HTMLElement} main
 * @returns {PostFilter}
 */
export function pageFilter(main) {
  return { tag: main.dataset.tag ?? null, pinned: main.dataset.pinned === "true" };
}

/**
 * Whether a filtered page shows the post: an edit that adds the tag or a pin brings it
 * in, one that takes it away takes it out.
 * @param {Post} post
 * @param {PostFilter} filter
 */
export function postMatches(post, filter) {
  if (filter.pinned && !post.pinned) return false;
  return filter.tag === null || (post.tags ?? []).includes(filter.tag);
}

/**
 * Whether post ``a`` comes before post ``b`` newest first, as the server lists posts: by
 * the time each went out (an approved or scheduled post goes out after posts with larger
 * ids), then by id. A time that cannot be read falls back to the ids.
 * @param {{id: number, created_at: string}} a
 * @param {{id: number, created_at: string}} b
 */
export function isNewer(a, b) {
  const at = Date.parse(a.created_at);
  const bt = Date.parse(b.created_at);
  if (Number.isNaN(at) || Number.isNaN(bt) || at === bt) return a.id > b.id;
  return at > bt;
}

/**
 * The child of ``list`` that ``post`` goes before, newest first (``isNewer``); null: at
 * the end. Each child is a post drawn with ``data-id`` and its time of publication as its
 * first ``<time datetime>`` (the reader's articles and key events, the desk's posts).
 * @param {Element} list
 * @param {{id: number, created_at: string}} post
 * @returns {Element | null}
 */
export function placeFor(list, post) {
  return placeAmong(Array.from(list.children), post);
}

/**
 * The one of ``elements`` (posts drawn as for ``placeFor``, newest first) that ``post``
 * goes before; null: after them all.
 * @param {Element[]} elements
 * @param {{id: number, created_at: string}} post
 * @returns {Element | null}
 */
export function placeAmong(elements, post) {
  return elements.find((other) => isNewer(post, {
    id: Number(/** @type {HTMLElement} */ (other).dataset.id),
    created_at: other.querySelector("time")?.getAttribute("datetime") ?? "",
  })) ?? null;
}

/**
 * An element with a class and, given one, its text (as text, never as HTML).
 * @param {string} tag
 * @param {string} className
 * @param {string} [text]
 */
function element(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
