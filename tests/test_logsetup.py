"""logsetup.configure: JSON or text lines with time, pid, worker and request id, and one
level for Bulletin's loggers and uvicorn's."""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import pytest
from asgi_correlation_id.context import correlation_id

from bulletin.settings import Settings, SettingsError
from tests.helpers import process_logging


@pytest.fixture
def configure() -> Iterator[Callable[..., io.StringIO]]:
    """Configure logging into a string (again at each call); undone after the test."""
    with ExitStack() as stack:
        def run(worker: int = 0, stream: io.StringIO | None = None,
                **settings: Any) -> io.StringIO:
            return stack.enter_context(process_logging(Settings(**settings), worker=worker,
                                                       stream=stream))

        yield run


def _json_lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_json_lines_carry_time_level_logger_pid_worker_and_message(
        configure: Callable[..., io.StringIO]) -> None:
    """Each JSON line is an object with the time (ISO 8601, UTC), level, logger, process
    id, worker number and message."""
    out = configure(worker=3, log_format="json")
    logging.getLogger("bulletin.test").warning("the %s is %d", "answer", 42)
    (line,) = _json_lines(out)
    assert line["message"] == "the answer is 42"
    assert (line["level"], line["logger"], line["pid"], line["worker"]) == (
        "WARNING", "bulletin.test", os.getpid(), 3)
    when = datetime.fromisoformat(line["time"])
    assert when.utcoffset() == UTC.utcoffset(None) and line["time"].endswith("Z")
    assert abs((datetime.now(UTC) - when).total_seconds()) < 60
    assert "request_id" not in line and "exception" not in line


def test_json_lines_carry_the_exception_and_the_request_id(
        configure: Callable[..., io.StringIO]) -> None:
    """A line logged with an exception has its traceback; one logged during a request has
    the request's id; fields given with ``extra`` are fields of their own."""
    out = configure(log_format="json")
    token = correlation_id.set("req-42")
    try:
        try:
            raise RuntimeError("a bug")
        except RuntimeError:
            logging.getLogger("bulletin.test").exception("it failed", extra={"route": "/x"})
    finally:
        correlation_id.reset(token)
    (line,) = _json_lines(out)
    assert line["request_id"] == "req-42" and line["route"] == "/x"
    assert "Traceback" in line["exception"] and "RuntimeError: a bug" in line["exception"]
    assert line["worker"] == 0
    assert not [key for key in line if key.startswith("_")]


def test_text_lines_carry_time_and_pid(configure: Callable[..., io.StringIO]) -> None:
    """Text lines start with the UTC time and the process id (and the worker number in a
    worker), and end with the request id during a request."""
    out = configure(worker=2, log_format="text")
    token = correlation_id.set("abc123")
    try:
        logging.getLogger("bulletin.test").warning("hello")
    finally:
        correlation_id.reset(token)
    logging.getLogger("bulletin.test").warning("bye")
    first, second = out.getvalue().splitlines()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert re.fullmatch(rf"{stamp} \[{os.getpid()}/2\] WARNING bulletin\.test: hello \[abc123\]",
                        first), first
    assert re.fullmatch(rf"{stamp} \[{os.getpid()}/2\] WARNING bulletin\.test: bye", second)


def test_text_on_a_terminal_json_otherwise(configure: Callable[..., io.StringIO]) -> None:
    """Without BULLETIN_LOG_FORMAT the lines are text on a terminal and JSON elsewhere."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    piped = configure()
    logging.getLogger("bulletin.test").warning("to a pipe")
    assert json.loads(piped.getvalue())["message"] == "to a pipe"
    terminal = configure(stream=Terminal())
    logging.getLogger("bulletin.test").warning("to a person")
    assert terminal.getvalue().rstrip().endswith("WARNING bulletin.test: to a person")


def test_the_level_applies_to_bulletin_and_uvicorn_and_libraries_warn(
        configure: Callable[..., io.StringIO]) -> None:
    """BULLETIN_LOG_LEVEL sets Bulletin's loggers and uvicorn's; other libraries log from
    WARNING; uvicorn's own access log writes nothing."""
    out = configure(log_format="json", log_level="warning")
    logging.getLogger("bulletin.live").info("bulletin info")
    logging.getLogger("uvicorn.error").info("uvicorn info")
    logging.getLogger("bulletin.live").warning("bulletin warning")
    logging.getLogger("uvicorn.error").warning("uvicorn warning")
    assert [line["message"] for line in _json_lines(out)] == [
        "bulletin warning", "uvicorn warning"]

    out = configure(log_format="json", log_level="debug")
    logging.getLogger("bulletin.live").debug("bulletin debug")
    logging.getLogger("uvicorn.error").debug("uvicorn debug")
    logging.getLogger("sqlalchemy.engine").info("library info")
    logging.getLogger("uvicorn.access").info("uvicorn access")
    assert [line["message"] for line in _json_lines(out)] == [
        "bulletin debug", "uvicorn debug"]


def test_configuring_twice_keeps_one_handler(configure: Callable[..., io.StringIO]) -> None:
    """A second configure replaces the first's handler: no line is written twice."""
    first = configure(log_format="json")
    second = configure(log_format="json")
    logging.getLogger("bulletin.test").warning("once")
    assert first.getvalue() == "" and len(second.getvalue().splitlines()) == 1


@pytest.mark.parametrize(("name", "value"), [("BULLETIN_LOG_FORMAT", "xml"),
                                             ("BULLETIN_LOG_LEVEL", "loud"),
                                             ("BULLETIN_LOG_SUMMARY_SECONDS", "0")])
def test_bad_log_settings_are_refused(name: str, value: str) -> None:
    """A log format, level or summary interval that does not exist is a settings error
    naming the variable."""
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_the_level_may_be_written_in_capitals(configure: Callable[..., io.StringIO]) -> None:
    """BULLETIN_LOG_LEVEL=WARNING is the same as warning."""
    settings = Settings.from_env({"BULLETIN_LOG_LEVEL": "WARNING", "BULLETIN_LOG_FORMAT": "json"})
    out = configure(log_format="json", log_level=settings.log_level)
    logging.getLogger("bulletin.live").info("hidden")
    logging.getLogger("bulletin.live").warning("shown")
    assert [line["message"] for line in _json_lines(out)] == ["shown"]
