// @ts-check
/**
 * The one error type of the client library.
 *
 * Guarantees: every error the client reports (to a subscription's `onError` or to
 * `client.on("error")`) is a `BulletinError` with a stable `code`; this module imports
 * nothing.
 *
 * @module @bulletin/client/errors
 */

/**
 * An error reported to `onError` or to `client.on("error")`.
 */
export class BulletinError extends Error {
  /**
   * @param {string} code a stable code: a server error code (`stream_not_found`, …) or
   *   one of `http_error`, `reload_failed`, `handler_error`
   * @param {string} message
   * @param {{stream?: string | null, status?: number | null, frame?: any, cause?: unknown}} [extra]
   */
  constructor(code, message, extra = {}) {
    super(message);
    this.name = "BulletinError";
    /** @type {string} */
    this.code = code;
    /** @type {string | null} */
    this.stream = extra.stream ?? null;
    /** @type {number | null} HTTP status, for errors from HTTP requests */
    this.status = extra.status ?? null;
    /** @type {any} the server's error frame or body, when there was one */
    this.frame = extra.frame ?? null;
    if (extra.cause !== undefined) {
      // Error's optional `cause` (ES2022), set only when there is one; assigned through
      // the Error type so that the checker keeps it optional (`this.cause =` declares it)
      /** @type {Error} */ (this).cause = extra.cause;
    }
  }
}
