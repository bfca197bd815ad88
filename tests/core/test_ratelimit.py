"""Token buckets allow bursts, then the configured rate, and bound their memory."""

from __future__ import annotations

import pytest

from bulletin.core.ratelimit import RateLimiter


def test_burst_then_rate() -> None:
    """A full bucket allows `burst` actions, then one per 1/rate seconds."""
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a", 0.0) == pytest.approx(0.5)
    assert limiter.take("a", 0.5) == 0.0
    assert limiter.take("a", 0.5) > 0


def test_keys_are_independent() -> None:
    """One key's spending does not limit another."""
    limiter = RateLimiter(rate=1.0, burst=1)
    assert limiter.take("a", 0.0) == 0.0
    assert limiter.take("a", 0.0) > 0
    assert limiter.take("b", 0.0) == 0.0


def test_memory_is_bounded() -> None:
    """Past max_keys the limiter drops idle buckets instead of growing."""
    limiter = RateLimiter(rate=1.0, burst=1, max_keys=10)
    for i in range(100):
        limiter.take(str(i), float(i) * 10)
    assert len(limiter._buckets) <= 10


def test_retry_after_is_whole_seconds() -> None:
    """Retry-After rounds up, and is at least 1."""
    limiter = RateLimiter(rate=1.0, burst=1)
    assert limiter.retry_after_header(0.01) == "1"
    assert limiter.retry_after_header(2.2) == "3"


def test_invalid_configuration_is_refused() -> None:
    """A zero rate or burst is an error, not a limiter that refuses everything."""
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(rate=0, burst=1)


def test_a_refund_undoes_a_take() -> None:
    """Taking and refunding leaves the bucket as it was: successes spend nothing."""
    limiter = RateLimiter(rate=1 / 60, burst=2)
    for _ in range(10):
        assert limiter.take("a", 0.0) == 0.0
        limiter.refund("a")
    assert [limiter.take("a", 0.0) for _ in range(2)] == [0.0, 0.0]
    assert limiter.take("a", 0.0) > 0


def test_attempts_in_flight_never_outnumber_the_tokens() -> None:
    """Attempts that have taken and not yet refunded hold their tokens: a third
    concurrent attempt on a burst of two is refused before it is checked."""
    limiter = RateLimiter(rate=1 / 60, burst=2)
    assert limiter.take("a", 0.0) == 0.0
    assert limiter.take("a", 0.0) == 0.0
    assert limiter.take("a", 0.0) > 0
    limiter.refund("a")
    assert limiter.take("a", 0.0) == 0.0


def test_a_refund_never_overfills_or_creates_a_bucket() -> None:
    """Refunds beyond the burst, or for a key never taken, change nothing."""
    limiter = RateLimiter(rate=1.0, burst=1)
    limiter.refund("unknown")
    assert "unknown" not in limiter._buckets
    assert limiter.take("a", 0.0) == 0.0
    limiter.refund("a")
    limiter.refund("a")
    assert limiter.take("a", 0.0) == 0.0
    assert limiter.take("a", 0.0) > 0
