"""Token buckets keyed by editor or client address (no I/O; the clock is passed in)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBucket:
    """One bucket on its own: ``rate`` actions per second, bursts up to ``burst``."""

    __slots__ = ("burst", "rate", "tokens", "updated")

    def __init__(self, *, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = now

    def take(self, now: float) -> bool:
        """Spend one token; False when the bucket is empty."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class RateLimiter:
    """Allows ``rate`` actions per second per key, with bursts up to ``burst``."""

    def __init__(self, *, rate: float, burst: int, max_keys: int = 100_000) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError(f"expected a positive rate and burst, got {rate} and {burst}")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, now: float) -> float:
        """Spend one token: 0.0 when allowed, else the seconds to wait before retrying."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._prune(now)
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def refund(self, key: str) -> None:
        """Give back the token a ``take`` for ``key`` spent, when what it paid for turned
        out not to count (a sign-in that succeeded: only failures are limited, yet the
        token is taken before the attempt, so that attempts in flight never outnumber
        the tokens). A bucket pruned meanwhile is full anyway; none exceeds ``burst``."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.tokens = min(float(self.burst), bucket.tokens + 1.0)

    def retry_after_header(self, wait: float) -> str:
        """Seconds for a ``Retry-After`` header: whole, and at least one."""
        return str(max(1, math.ceil(wait)))

    def _prune(self, now: float) -> None:
        # Full buckets carry no state worth keeping; drop them, and if that is not
        # enough (a flood of distinct keys) start over rather than grow without bound.
        full_after = self.burst / self.rate
        self._buckets = {k: b for k, b in self._buckets.items() if now - b.updated < full_after}
        if len(self._buckets) >= self.max_keys:
            self._buckets.clear()
