"""Durations as people type them: ``90d``, ``12h``, ``30m`` (token lifetimes).

A leaf module like ``settings``: the settings, the store and the command line all read
the same spelling.
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION_RE = re.compile(r"([1-9][0-9]{0,5})([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
# Ten years: longer is "never" in all but name, and far dates overflow some clients.
MAX_DURATION = timedelta(days=3650)


def parse_duration(text: str) -> timedelta:
    """``90d``, ``12h`` or ``30m`` as a timedelta; ValueError with a message for people."""
    match = _DURATION_RE.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"invalid duration {text!r}: expected a whole number of days, hours "
                         "or minutes such as 90d, 12h or 30m")
    value = timedelta(**{_UNITS[match[2]]: int(match[1])})
    if value > MAX_DURATION:
        raise ValueError(f"invalid duration {text!r}: at most {MAX_DURATION.days}d")
    return value
