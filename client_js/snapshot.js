// @ts-check
/**
 * Snapshot reloads: a stream's current state read over HTTP, for `reset` (the server could
 * not replay from our seq) and for `client.loadSnapshot()`.
 *
 * Guarantees:
 * - The stream is read before its posts, so its `seq` is a safe resume point: posts read
 *   after it can only be newer, and replayed events carry full states.
 * - While a reset reloads, its subscription receives no events; after it, `onReset` gets
 *   the snapshot, `lastSeq` becomes the snapshot's seq and following resumes from there on
 *   whatever transport is current.
 * - A failed reload is reported and retried with back-off; a 404, 401 or 403 ends the
 *   subscription instead (the server would refuse it again).
 * - Every HTTP error is a `BulletinError` carrying the server's error code when it sent one.
 *
 * @module @bulletin/client/snapshot
 */

import { BulletinError, backoffDelay, filterQuery, streamPath } from "./protocol.js";

/**
 * @typedef {import("./client.js").BulletinClient} BulletinClient
 * @typedef {import("./client.js").Subscription} Subscription
 * @typedef {import("./client.js").Snapshot} Snapshot
 * @typedef {{
 *   api: string,
 *   token: string | undefined,
 *   fetch: ((input: string, init?: any) => Promise<any>) | undefined,
 *   postsLimit: number | undefined,
 * }} SnapshotOptions
 */

/**
 * The HTTP reads of a client: snapshots, reset reloads, a stream's status.
 */
export class Snapshots {
  /**
   * @param {BulletinClient} client
   * @param {SnapshotOptions} options
   */
  constructor(client, options) {
    /** @private */
    this._client = client;
    /** @private */
    this._api = options.api;
    /** @private */
    this._token = options.token;
    /** @private */
    this._fetch = options.fetch;
    /** @private */
    this._postsLimit = options.postsLimit;
  }

  /** @private */
  _headers() {
    /** @type {Record<string, string>} */
    const headers = { Accept: "application/json" };
    if (this._token) headers.Authorization = `Bearer ${this._token}`;
    return headers;
  }

  /**
   * @private
   * @param {string} url
   */
  async _getJson(url) {
    if (!this._fetch) throw new BulletinError("reload_failed", "no fetch available");
    const res = await this._fetch(url, { headers: this._headers() });
    if (!res.ok) {
      /** @type {any} */
      let body = null;
      try { body = await res.json(); } catch { /* not JSON */ }
      const code = body && body.error && typeof body.error.code === "string"
        ? body.error.code : "http_error";
      const message = body && body.error && typeof body.error.message === "string"
        ? body.error.message : `GET ${url}: HTTP ${res.status}`;
      throw new BulletinError(code, message, { status: res.status, frame: body });
    }
    return res.json();
  }

  /**
   * The stream's current state over HTTP (what `client.loadSnapshot()` returns).
   * @param {string} stream
   * @param {import("./protocol.js").PostFilter} [filter] only these posts
   * @returns {Promise<Snapshot>}
   */
  async load(stream, filter) {
    const base = `${this._api}${streamPath(stream)}`;
    // The stream first: its seq is the resume point; posts read after it can only be
    // newer, and replayed events carry full states, so applying them again is harmless.
    const info = await this._getJson(base);
    const query = [this._postsLimit ? `limit=${this._postsLimit}` : "", filterQuery(filter)]
      .filter(Boolean).join("&");
    const page = await this._getJson(`${base}/posts${query ? `?${query}` : ""}`);
    return {
      stream: info,
      posts: Array.isArray(page && page.posts) ? page.posts : [],
      pinned: Array.isArray(info && info.pinned) ? info.pinned : [],
    };
  }

  /**
   * The HTTP status of GET /api/streams/{slug}, or 0 when it could not be asked.
   * @param {string} slug
   * @returns {Promise<number>}
   */
  async status(slug) {
    if (!this._fetch) return 0;
    try {
      const res = await this._fetch(`${this._api}${streamPath(slug)}`,
        { headers: this._headers() });
      return typeof res.status === "number" ? res.status : 0;
    } catch {
      return 0;
    }
  }

  /**
   * Reload the stream's state (the server said `reset`), then follow it from the loaded seq.
   * @param {Subscription} sub
   */
  async reset(sub) {
    const c = this._client;
    if (sub._ended || c._closed) return;
    sub._resetting = true;
    c._clearTimeout(sub._resetTimer);
    sub._resetTimer = null;
    /** @type {Snapshot} */
    let snapshot;
    try {
      snapshot = await c.loadSnapshot(sub.stream, sub._options.filter);
      if (!snapshot.stream || !Number.isSafeInteger(snapshot.stream.seq)) {
        throw new BulletinError("reload_failed", "the stream has no seq");
      }
    } catch (err) {
      if (sub._ended || c._closed) return;
      const e = err instanceof BulletinError ? err
        : new BulletinError("reload_failed", `reload failed: ${String(err)}`, { cause: err });
      e.stream = sub.stream;
      if (e.status === 404 || e.status === 401 || e.status === 403) {
        c._fail(sub, e);
        return;
      }
      c._report(sub, e);
      const delay = backoffDelay(sub._resetAttempt, c._backoff, c._random);
      sub._resetAttempt += 1;
      sub._resetTimer = c._setTimeout(() => {
        sub._resetTimer = null;
        this.reset(sub);
      }, delay);
      return;
    }
    if (sub._ended || c._closed) return;
    sub._resetting = false;
    sub._resetAttempt = 0;
    sub.lastSeq = snapshot.stream.seq;
    c._call(sub, "onReset", snapshot);
    if (sub._ended || c._closed) return;
    c._resume(sub);
  }
}
