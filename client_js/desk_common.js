// What every part of the desk's script shares: requests to the API with the session's
// CSRF token, what to tell the editor when one is refused, idempotency keys, the page's
// status and error messages, and Ctrl/Cmd+Enter. Imports nothing.

export const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute("content") ?? "";

/**
 * @typedef {{ok: boolean, status: number, data: any, retryAfter: string | null,
 *            etag: string | null, replayed: boolean}} Result
 */

/**
 * @param {string} id
 * @returns {HTMLElement | null}
 */
export const byId = (id) => document.getElementById(id);

/**
 * A JSON request with the session's CSRF token. Throws only when the network fails.
 * @param {string} method
 * @param {string} url
 * @param {unknown} [body]
 * @param {Record<string, string>} [headers]
 * @returns {Promise<Result>}
 */
export async function request(method, url, body, headers = {}) {
  const response = await fetch(url, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json",
               "X-CSRF-Token": csrf, ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await response.json(); } catch { /* not JSON: a proxy's error page */ }
  return { ok: response.ok, status: response.status, data,
           retryAfter: response.headers.get("Retry-After"), etag: response.headers.get("ETag"),
           replayed: response.headers.get("Idempotent-Replayed") === "true" };
}

// How long to wait before each check of a request whose answer was lost.
const CHECK_DELAYS_MS = [0, 1000, 3000];

/**
 * An idempotent request whose answer may be lost. The network can fail after the server
 * has done the work (a dropped connection, a proxy's timeout): sending the same request
 * again with the same Idempotency-Key gets the first answer back, marked replayed, and
 * does the work only if the first request never arrived. So a lost answer is checked a
 * few times before the editor is told anything.
 * @param {string} method
 * @param {string} url
 * @param {unknown} body
 * @param {string} key
 * @param {() => void} [checking] called when the first answer was lost
 * @returns {Promise<Result | null>} null when no answer came at all
 */
export async function requestOnce(method, url, body, key, checking) {
  const headers = { "Idempotency-Key": key };
  try {
    return await request(method, url, body, headers);
  } catch { /* the answer was lost: check below */ }
  checking?.();
  for (const delay of CHECK_DELAYS_MS) {
    await new Promise((resolve) => setTimeout(resolve, delay));
    try {
      return await request(method, url, body, headers);
    } catch { /* still no answer */ }
  }
  return null;
}

/**
 * What to tell the editor about a refused request.
 * @param {Result} result
 * @returns {string}
 */
export function failureText(result) {
  const code = result.data?.error?.code;
  if (result.status === 429) {
    return `Too many requests just now. Wait ${result.retryAfter ?? "a few"} seconds and retry.`;
  }
  if (result.status === 401) {
    return "Your sign-in has ended. Sign in again in another tab, then retry here.";
  }
  if (code === "csrf_failed") return "This page is out of date. Reload it, then retry.";
  if (result.status >= 500 || !result.data?.error) {
    return `The server could not save this (HTTP ${result.status}). Retry in a moment.`;
  }
  const message = String(result.data.error.message);
  return message.charAt(0).toUpperCase() + message.slice(1) + (message.endsWith(".") ? "" : ".");
}

export const NETWORK_FAILURE = "Could not reach the server. Check the connection, then retry.";

/**
 * A new idempotency key (crypto.getRandomValues works outside secure contexts too).
 * @returns {string}
 */
export function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Say something in the page's polite status region.
 * @param {string} text
 */
export function announce(text) {
  const flash = byId("flash");
  if (!flash) return;
  const p = document.createElement("p");
  p.className = "notice notice-ok";
  p.textContent = text;
  flash.replaceChildren(p);
}

/**
 * Show or clear an inline error (a role="alert" element).
 * @param {HTMLElement} element
 * @param {string} text
 */
export function showError(element, text) {
  element.textContent = text;
  element.hidden = !text;
}

/**
 * Run `action` on Ctrl/Cmd+Enter inside `element`.
 * @param {HTMLElement} element
 * @param {() => void} action
 */
export function onCtrlEnter(element, action) {
  element.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      action();
    }
  });
}
