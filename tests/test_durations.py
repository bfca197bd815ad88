"""durations.py: token lifetimes as people type them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bulletin.durations import MAX_DURATION, parse_duration


@pytest.mark.parametrize(("text", "value"), [
    ("90d", timedelta(days=90)), ("12h", timedelta(hours=12)), ("30m", timedelta(minutes=30)),
    (" 7D ", timedelta(days=7)), ("3650d", MAX_DURATION), ("1m", timedelta(minutes=1)),
])
def test_days_hours_and_minutes(text: str, value: timedelta) -> None:
    """A whole number of days, hours or minutes (any case, spaces around) is read."""
    assert parse_duration(text) == value


@pytest.mark.parametrize("text", ["", "90", "d", "0d", "05d", "1.5h", "2w", "1y", "-3d",
                                  "3 d", "1d12h", "٣d", "9999999d"])
def test_anything_else_is_a_clear_error(text: str) -> None:
    """Anything else, zero or a leading zero included, is a ValueError naming the input."""
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_at_most_ten_years() -> None:
    """A longer lifetime is refused, saying the limit."""
    with pytest.raises(ValueError, match="at most 3650d"):
        parse_duration("3651d")
    with pytest.raises(ValueError, match="at most 3650d"):
        parse_duration("87601h")
