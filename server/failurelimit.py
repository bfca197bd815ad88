"""A token bucket spent on failures only, and checked before the attempt (no I/O).

Checking first and spending after a failure would let concurrent attempts all pass the
check before any of them fails: a burst of guesses sent at once would all be verified.
So a token is taken before the attempt, as with ``RateLimiter``, and given back when the
attempt succeeds: at no moment are more attempts in flight than there are tokens, and
successes cost nothing.
"""

from __future__ import annotations

from .ratelimit import RateLimiter


class FailureLimiter(RateLimiter):
    """A ``RateLimiter`` whose ``take`` can be undone with ``refund``."""

    def refund(self, key: str) -> None:
        """Give back the token a ``take`` for ``key`` spent (on an attempt that succeeded).

        A bucket dropped in between (the limiter prunes idle buckets) is full anyway, and
        a bucket never holds more than ``burst``.
        """
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.tokens = min(float(self.burst), bucket.tokens + 1.0)
