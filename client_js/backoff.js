// @ts-check
/**
 * Full-jitter exponential back-off, the one delay rule of every retry in the client
 * (reconnects, EventSource retries, snapshot reloads, `unavailable` resubscribes).
 *
 * Guarantees: the delay is a pure function of its arguments (the randomness is passed in)
 * and lies in [0, window) with the window capped at `backoff.max`, so that a reconnect
 * storm after a deploy spreads out; this module imports nothing.
 *
 * @module @bulletin/client/backoff
 */

/**
 * Full-jitter back-off: a random delay in [0, min(max, max(floor, initial * 2^attempt))).
 * @param {number} attempt reconnects in a row before this one (0 for the first)
 * @param {{initial: number, max: number}} backoff
 * @param {() => number} random a function returning [0, 1)
 * @param {number} [floor] a minimum window (used after the server said it is going away)
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, backoff, random, floor = 0) {
  const window = Math.min(backoff.max, Math.max(floor, backoff.initial * 2 ** attempt));
  return random() * window;
}
