"""A failure budget is taken before an attempt and given back when the attempt succeeds."""

from __future__ import annotations

from server.failurelimit import FailureLimiter


def test_a_refund_undoes_a_take() -> None:
    """Taking and refunding leaves the bucket as it was: successes spend nothing."""
    limiter = FailureLimiter(rate=1 / 60, burst=2)
    for _ in range(10):
        assert limiter.take("a", 0.0) == 0.0
        limiter.refund("a")
    assert [limiter.take("a", 0.0) for _ in range(2)] == [0.0, 0.0]
    assert limiter.take("a", 0.0) > 0


def test_attempts_in_flight_never_outnumber_the_tokens() -> None:
    """Attempts that have taken and not yet refunded hold their tokens: a third
    concurrent attempt on a burst of two is refused before it is checked."""
    limiter = FailureLimiter(rate=1 / 60, burst=2)
    assert limiter.take("a", 0.0) == 0.0
    assert limiter.take("a", 0.0) == 0.0
    assert limiter.take("a", 0.0) > 0
    limiter.refund("a")
    assert limiter.take("a", 0.0) == 0.0


def test_a_refund_never_overfills_or_creates_a_bucket() -> None:
    """Refunds beyond the burst, or for a key never taken, change nothing."""
    limiter = FailureLimiter(rate=1.0, burst=1)
    limiter.refund("unknown")
    assert "unknown" not in limiter._buckets
    assert limiter.take("a", 0.0) == 0.0
    limiter.refund("a")
    limiter.refund("a")
    assert limiter.take("a", 0.0) == 0.0
    assert limiter.take("a", 0.0) > 0
