// Presence on the desk's stream page: the other editors on the story and what each is
// doing ("Ada is editing this post" on the post itself), and how many readers have it
// open. The page says what this editor does: "viewing" once the stream is followed, and
// "editing" a post while its edit form is open (desk_posts.js dispatches "post-editing"
// on the post), back to "viewing" when it closes. The frames are the server's
// `presence` and `readers` (docs/protocol.md), which only editors' connections receive.

/**
 * @typedef {import("./client.js").PresenceEntry} PresenceEntry
 * @typedef {import("./client.js").Subscription} Subscription
 */

/** The name of the event desk_posts.js dispatches on a post when its editing starts or ends. */
export const EDITING_EVENT = "post-editing";

/**
 * "Ada", "Ada and Bo", "Ada, Bo and Cy".
 * @param {string[]} names
 * @returns {string}
 */
export function joinNames(names) {
  if (names.length <= 1) return names[0] ?? "";
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

/**
 * "1 reading now", "12,400 reading now".
 * @param {number} count
 * @returns {string}
 */
export function readersText(count) {
  return `${count.toLocaleString("en")} reading now`;
}

/** The editors and readers of the stream page, kept live. */
export class DeskPresence {
  /**
   * @param {HTMLOListElement} list the posts (`#posts`)
   * @param {{editors: HTMLElement | null, readers: HTMLElement | null, me: number}} parts
   */
  constructor(list, parts) {
    this.list = list;
    this.editorsBox = parts.editors;
    this.readersBox = parts.readers;
    this.me = parts.me;
    /** @type {PresenceEntry[]} */
    this.others = [];
    /** @type {Subscription | null} */
    this.sub = null;
    /** @type {number | null} the post this page is editing */
    this.editing = null;
  }

  /**
   * Say what this page does on the stream, now and as posts' edit forms open and close.
   * @param {Subscription} sub
   */
  attach(sub) {
    this.sub = sub;
    sub.presence(null, "viewing");
    this.list.addEventListener(EDITING_EVENT, (event) => {
      const li = /** @type {HTMLElement} */ (event.target).closest("li.post");
      const id = Number(/** @type {HTMLElement | null} */ (li)?.dataset.id);
      if (!Number.isSafeInteger(id)) return;
      const on = Boolean(/** @type {CustomEvent} */ (event).detail?.editing);
      if (on) this.editing = id;
      else if (this.editing === id) this.editing = null;
      else return;
      sub.presence(this.editing, this.editing === null ? "viewing" : "editing");
    });
  }

  /**
   * Everyone on the stream, from a `presence` frame; this editor's own entries are not shown.
   * @param {PresenceEntry[]} editors
   */
  show(editors) {
    this.others = editors.filter((e) => e.editor !== this.me);
    this.refresh();
  }

  /** @param {number} count readers of the stream, from a `readers` frame */
  readers(count) {
    const box = this.readersBox;
    if (!box) return;
    box.dataset.count = String(count);
    box.textContent = readersText(count);
  }

  /** The "On this story" line: each other editor once, with what they do. */
  showEditors() {
    const box = this.editorsBox;
    if (!box) return;
    /** @type {Map<number, {name: string, editing: number | null}>} */
    const people = new Map();
    for (const entry of this.others) {
      const known = people.get(entry.editor);
      const editing = entry.state === "editing" ? entry.post : known?.editing ?? null;
      people.set(entry.editor, { name: entry.name, editing });
    }
    box.hidden = people.size === 0;
    const items = Array.from(people.values(), ({ name, editing }) => {
      const item = document.createElement("li");
      const who = document.createElement("strong");
      who.textContent = name;
      item.append(who, editing === null ? " viewing" : " editing ", this.postLink(editing));
      item.dataset.state = editing === null ? "viewing" : "editing";
      return item;
    });
    const list = box.querySelector("ul") ?? box.appendChild(document.createElement("ul"));
    list.replaceChildren(...items);
  }

  /**
   * A link to the post being edited, named by its first words ("a post" when it is not on
   * this page); nothing for null.
   * @param {number | null} id
   * @returns {Node | string}
   */
  postLink(id) {
    if (id === null) return "";
    const li = /** @type {HTMLElement | null} */ (this.list.querySelector(`#post-${id}`));
    const words = (li?.dataset.body ?? "").replace(/\s+/g, " ").trim();
    if (!li || !words) return "a post";
    const link = document.createElement("a");
    link.href = `#post-${id}`;
    link.textContent = `“${words.length > 40 ? `${words.slice(0, 39)}…` : words}”`;
    return link;
  }

  /** Put "… is editing this post" on each post someone else is editing (after any change
   * to the list, since posts may arrive after the frame that names them). */
  refresh() {
    this.showEditors();
    /** @type {Map<number, string[]>} */
    const byPost = new Map();
    for (const entry of this.others) {
      if (entry.state !== "editing" || entry.post === null) continue;
      const names = byPost.get(entry.post) ?? [];
      if (!names.includes(entry.name)) names.push(entry.name);
      byPost.set(entry.post, names);
    }
    for (const li of this.list.querySelectorAll("li.post")) {
      const post = /** @type {HTMLElement} */ (li);
      const names = byPost.get(Number(post.dataset.id));
      let flag = /** @type {HTMLElement | null} */ (post.querySelector(":scope > .post-presence"));
      if (!names) {
        flag?.remove();
        continue;
      }
      if (!flag) {
        flag = document.createElement("p");
        flag.className = "post-presence";
        post.prepend(flag);
      }
      flag.textContent = `${joinNames(names)} ${names.length === 1 ? "is" : "are"} editing this post`;
    }
  }
}
