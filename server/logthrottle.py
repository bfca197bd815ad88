"""A log that a client cannot flood: one line per cause per interval, with a count.

A hostile client can make the same thing go wrong thousands of times a second (a refused
frame, a read that fails while the database is away, a malformed request). Each cause
— the logger, the message template and the exception type — is written once per
``interval``; repeats within it are counted and dropped, and the next line written for
that cause says how many were dropped. A traceback is printed only with the first line of
an interval, so a flood costs a few lines a minute, not a traceback per frame.

``logsetup.configure`` puts a filter on the one handler that Bulletin's processes log
through; ``install()`` puts one on every handler of the root logger and uvicorn's.
Access-log lines are never throttled: they are one per request by design and operators
turn them off by level; nor are the periodic summary lines, nor the supervisor's (a
worker started, replaced, rolled: few, caused by the operator or a worker's life, never
by a client, and each one matters).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

INTERVAL_SECONDS = 10.0
# Causes remembered at most; a flood of distinct messages starts the table over rather
# than growing it.
MAX_CAUSES = 1000
UNTHROTTLED = frozenset({"uvicorn.access", "bulletin.access", "bulletin.summary",
                         "bulletin.supervisor"})


class _Cause:
    __slots__ = ("dropped", "since")

    def __init__(self, since: float) -> None:
        self.since = since
        self.dropped = 0


class ThrottleFilter(logging.Filter):
    """Lets the first record of each cause through per interval and counts the rest."""

    def __init__(self, interval: float = INTERVAL_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self._causes: dict[tuple[str, int, str, str], _Cause] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name in UNTHROTTLED:
            return True
        # Several handlers may carry this filter: a record is judged once.
        decided: bool | None = getattr(record, "_bulletin_throttle", None)
        if decided is not None:
            return decided
        exc_type = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
        key = (record.name, record.levelno, str(record.msg), exc_type)
        now = self.clock()
        with self._lock:
            cause = self._causes.get(key)
            if cause is not None and now - cause.since < self.interval:
                cause.dropped += 1
                record._bulletin_throttle = False
                return False
            dropped = cause.dropped if cause is not None else 0
            if len(self._causes) >= MAX_CAUSES:
                self._causes.clear()
            self._causes[key] = _Cause(now)
        if dropped:
            record.msg = f"{record.msg} [{dropped} more like this in the last " \
                         f"{self.interval:.0f} s were not logged]"
        record._bulletin_throttle = True
        return True


_installed: ThrottleFilter | None = None


def install(interval: float = INTERVAL_SECONDS) -> ThrottleFilter:
    """Throttle every handler of the root and uvicorn loggers (idempotent)."""
    global _installed
    if _installed is None:
        _installed = ThrottleFilter(interval)
    names = ("", "uvicorn", "uvicorn.error", "bulletin")
    for name in names:
        for handler in logging.getLogger(name).handlers:
            if _installed not in handler.filters:
                handler.addFilter(_installed)
    return _installed
