"""Bulletin's logging, set up once per process: format, level, and what every line carries.

``configure`` is the one place that decides how a process logs: ``bulletin serve`` and
the other commands call it from ``cli.main``, each ``--workers`` process from
``supervisor.run_worker`` with its worker number. It puts one handler on the root logger
(stderr) and sets the level of Bulletin's loggers (``bulletin.*``) and uvicorn's
(``uvicorn``, ``uvicorn.error``) to ``BULLETIN_LOG_LEVEL``; other libraries log at
WARNING and above. uvicorn's own access log is off: ``bulletin.access`` writes one line
per HTTP request instead (web/requestlog.py).

Every line carries the time (ISO 8601, UTC), the process id, the worker number (0 in a
single process and in the supervisor, 1..N in ``--workers`` processes) and, during an HTTP
request, its request id. ``BULLETIN_LOG_FORMAT`` picks the shape: ``json`` (one object a
line, for collectors) or ``text`` (for people); unset, text when stderr is a terminal and
JSON otherwise (a container, systemd, a file), so that a developer's terminal is readable
and a deployment's collector gets fields without being configured.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

from asgi_correlation_id.context import correlation_id
from pythonjsonlogger.json import JsonFormatter

from . import logthrottle
from .settings import Settings

# uvicorn's finest level, below DEBUG.
TRACE = 5
LEVELS = {"critical": logging.CRITICAL, "error": logging.ERROR, "warning": logging.WARNING,
          "info": logging.INFO, "debug": logging.DEBUG, "trace": TRACE}
# Loggers that follow BULLETIN_LOG_LEVEL; everything else logs from WARNING.
OWN_LOGGERS = ("bulletin", "uvicorn", "uvicorn.error")
# Record attributes that are not for the output (the log throttle's mark, uvicorn's
# coloured copy of the message).
_PRIVATE = ("color_message",)


class LineContext(logging.Filter):
    """Puts the worker number and the current request id (or None) on every record."""

    def __init__(self, worker: int = 0) -> None:
        super().__init__()
        self.worker = worker

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker = self.worker
        record.request_id = correlation_id.get()
        return True


def _utc(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


class JsonLines(JsonFormatter):
    """One JSON object a line: time, level, logger, pid, worker, message, request_id
    (during a request), exception (with one), and the fields a call adds with ``extra``."""

    def __init__(self) -> None:
        super().__init__(
            ["levelname", "name", "process", "worker", "message", "request_id"],
            rename_fields={"levelname": "level", "name": "logger", "process": "pid",
                           "exc_info": "exception"})

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord,
                   message_dict: dict[str, Any]) -> None:
        log_data["time"] = _utc(record.created)
        super().add_fields(log_data, record, message_dict)
        if log_data.get("request_id") is None:
            log_data.pop("request_id", None)
        log_data.setdefault("worker", 0)
        for key in [k for k in log_data if k.startswith("_") or k in _PRIVATE]:
            del log_data[key]


class TextLines(logging.Formatter):
    """``2026-05-04T21:03:07.412Z [4242/1] INFO bulletin.access: message [request id]``:
    the pid, then the worker number after a slash in a ``--workers`` process."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _utc(record.created)

    def formatMessage(self, record: logging.LogRecord) -> str:
        worker = getattr(record, "worker", 0)
        request_id = getattr(record, "request_id", None)
        return (f"{record.asctime} [{record.process}{f'/{worker}' if worker else ''}] "
                f"{record.levelname} {record.name}: {record.message}"
                f"{f' [{request_id}]' if request_id else ''}")


def wants_json(settings: Settings, stream: TextIO) -> bool:
    """Whether lines are JSON: as BULLETIN_LOG_FORMAT says, else unless ``stream`` is a
    terminal."""
    if settings.log_format:
        return settings.log_format == "json"
    isatty = getattr(stream, "isatty", None)
    return not (isatty is not None and isatty())


def configure(settings: Settings, *, worker: int = 0, stream: TextIO | None = None
              ) -> logging.Handler:
    """Log to ``stream`` (stderr) as the settings say; idempotent (a second call replaces
    the first's handler). Returns the handler."""
    stream = sys.stderr if stream is None else stream
    logging.addLevelName(TRACE, "TRACE")
    handler = logging.StreamHandler(stream)
    handler.set_name("bulletin")
    handler.setFormatter(JsonLines() if wants_json(settings, stream) else TextLines())
    # A flood of one failure is a few lines a minute (only this handler: others, such as
    # a test's capture, see every record).
    handler.addFilter(logthrottle.ThrottleFilter())
    handler.addFilter(LineContext(worker))
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "bulletin"]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    level = LEVELS[settings.log_level.lower()]
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level)
    # Ours replaces it (serving.config also tells uvicorn: access_log=False).
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    # A client that sends a malformed X-Request-ID gets a new one: not worth a warning.
    logging.getLogger("asgi_correlation_id").setLevel(logging.ERROR)
    return handler
