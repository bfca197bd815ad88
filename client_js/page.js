// @ts-check
/**
 * Page wake-ups: the browser signals after which a client should connect at once instead
 * of waiting out its back-off (the page became visible, the network came back, the page
 * was restored from the back/forward cache), and the one after which it should stop
 * trying (the network went away).
 *
 * Guarantees: a missing or partial `document` / `window` (React Native, Node, a worker)
 * is ignored, never an error; `stop()` removes every listener that was added, so that the
 * page holds no reference to a closed client. This module imports nothing.
 *
 * @module @bulletin/client/page
 */

/**
 * @typedef {"visible" | "online" | "pageshow"} WakeReason
 * @typedef {{
 *   wake: (why: WakeReason) => void,
 *   offline: () => void,
 * }} PageHandlers
 * @typedef {{
 *   startsOffline: boolean,
 *   stop: () => void,
 * }} PageWatch
 */

/**
 * Listen to `document` (visibilitychange) and `window` (online, offline, pageshow).
 * @param {any} document the page's document, if any
 * @param {any} window the page's window, if any
 * @param {PageHandlers} handlers called as the signals arrive
 * @returns {PageWatch} `startsOffline`: the window said it was offline when asked now
 */
export function watchPage(document, window, handlers) {
  const onVisibility = () => {
    if (document && document.visibilityState === "visible") handlers.wake("visible");
  };
  const onOnline = () => handlers.wake("online");
  const onOffline = () => handlers.offline();
  /** @param {any} e */
  const onPageShow = (e) => { if (e && e.persisted) handlers.wake("pageshow"); };
  let startsOffline = false;
  if (document && typeof document.addEventListener === "function") {
    document.addEventListener("visibilitychange", onVisibility);
  }
  if (window && typeof window.addEventListener === "function") {
    window.addEventListener("online", onOnline);
    window.addEventListener("offline", onOffline);
    window.addEventListener("pageshow", onPageShow);
    const nav = window.navigator;
    if (nav && nav.onLine === false) startsOffline = true;
  }
  const stop = () => {
    if (document && typeof document.removeEventListener === "function") {
      document.removeEventListener("visibilitychange", onVisibility);
    }
    if (window && typeof window.removeEventListener === "function") {
      window.removeEventListener("online", onOnline);
      window.removeEventListener("offline", onOffline);
      window.removeEventListener("pageshow", onPageShow);
    }
  };
  return { startsOffline, stop };
}
