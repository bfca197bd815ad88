// A post's headline, tags and bylines on the desk: the fields the server renders in
// editor/_fields.html (which post without JavaScript too), read and filled here for the
// API. Tags are typed with commas; bylines are people of the directory, ticked.

/**
 * @typedef {object} FieldValues
 * @property {string} headline
 * @property {string[]} tags
 * @property {number[]} contributors person ids, in the directory's order
 */

/**
 * Tags as the server takes them from a typed list: "Economy, #polls" → ["economy", "polls"].
 * @param {string} text
 * @returns {string[]}
 */
export function parseTags(text) {
  const tags = text.split(",").map((t) => t.trim().replace(/^#+/, "").trim().toLowerCase())
    .filter(Boolean);
  return [...new Set(tags)];
}

export class PostFields {
  /** @param {HTMLElement} root the .post-fields element */
  constructor(root) {
    this.root = root;
    this.headline = /** @type {HTMLInputElement} */ (root.querySelector('input[name="headline"]'));
    this.tags = /** @type {HTMLInputElement} */ (root.querySelector('input[name="tags"]'));
  }

  /** @returns {HTMLInputElement[]} */
  boxes() {
    return [...this.root.querySelectorAll('input[name="contributors"]')]
      .map((box) => /** @type {HTMLInputElement} */ (box));
  }

  /** @returns {FieldValues} */
  values() {
    return {
      headline: this.headline.value.trim(),
      tags: parseTags(this.tags.value),
      contributors: this.boxes().filter((b) => b.checked).map((b) => Number(b.value)),
    };
  }

  /**
   * @param {{headline?: string | null, tags?: string[], contributors?: (number | {id: number})[]}} values
   */
  set(values) {
    this.headline.value = values.headline ?? "";
    this.tags.value = (values.tags ?? []).join(", ");
    const chosen = new Set((values.contributors ?? [])
      .map((c) => (typeof c === "number" ? c : c.id)));
    for (const box of this.boxes()) box.checked = chosen.has(Number(box.value));
  }

  clear() {
    this.set({});
  }

  /**
   * The names of the directory's people as the bylines field lists them, by id.
   * @returns {Map<number, string>}
   */
  names() {
    // A choice's label is the box, the name, then the description in a span of its own.
    /** @param {HTMLInputElement} box */
    const name = (box) => [...(box.parentElement?.childNodes ?? [])]
      .filter((node) => node.nodeType === Node.TEXT_NODE)
      .map((node) => node.textContent).join("").trim();
    return new Map(this.boxes().map((box) => [Number(box.value), name(box) || `#${box.value}`]));
  }

  /** Whether anything was typed or ticked. */
  filled() {
    const v = this.values();
    return Boolean(v.headline || v.tags.length || v.contributors.length);
  }

  /** @param {boolean} locked */
  lock(locked) {
    this.headline.readOnly = locked;
    this.tags.readOnly = locked;
    for (const box of this.boxes()) box.disabled = locked;
  }

  /** @param {() => void} listener called on every change */
  onChange(listener) {
    this.root.addEventListener("input", listener);
    this.root.addEventListener("change", listener);
  }
}
