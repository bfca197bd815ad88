"""Request ids, the access line and the 500 answer: every HTTP request has an id that its
log lines and its answer carry, and one access line when it completes."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bulletin.settings import Settings
from bulletin.web import requestlog
from tests.helpers import process_logging

GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def database_url(sqlite_template: Path, tmp_path: Path) -> str:
    """SQLite only: what is logged does not depend on the database."""
    path = tmp_path / "bulletin.db"
    path.write_bytes(sqlite_template.read_bytes())
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Bulletin's JSON log lines at DEBUG, as a function returning those written so far."""
    with process_logging(Settings(log_format="json", log_level="debug")) as out:
        yield lambda: [json.loads(line) for line in out.getvalue().splitlines()]


def _access(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == "bulletin.access"]


def _add_route(app: Starlette, path: str, endpoint: Callable[[Request], Any]) -> None:
    app.router.routes.insert(0, Route(path, endpoint))


@pytest.mark.parametrize("sent", ["abc-123", "A.b_C-9", "x" * 64])
async def test_a_sane_request_id_is_echoed(client: httpx.AsyncClient, sent: str) -> None:
    """A client's X-Request-ID of 1-64 letters, digits, '.', '_' or '-' comes back."""
    response = await client.get("/api/streams", headers={"X-Request-ID": sent})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == sent


@pytest.mark.parametrize("sent", ["x" * 65, "a b", "<script>", "ä".encode(), "a/b", "a;b"])
async def test_an_insane_request_id_is_replaced(client: httpx.AsyncClient,
                                                sent: str | bytes) -> None:
    """Too long, or with other characters: the request gets an id of the server's own."""
    response = await client.get("/api/streams", headers=[(b"X-Request-ID", sent)])
    assert GENERATED.fullmatch(response.headers["X-Request-ID"])


async def test_a_request_without_an_id_gets_one(client: httpx.AsyncClient) -> None:
    """Without X-Request-ID each request gets a new id, also on errors."""
    first = await client.get("/api/streams")
    second = await client.get("/api/streams/nope")
    assert second.status_code == 404
    ids = {first.headers["X-Request-ID"], second.headers["X-Request-ID"]}
    assert len(ids) == 2 and all(GENERATED.fullmatch(i) for i in ids)


async def test_lines_logged_during_a_request_carry_its_id(
        app: Starlette, client: httpx.AsyncClient,
        log_lines: Callable[[], list[dict[str, Any]]]) -> None:
    """Every line written while a request is served, and its access line, has its id;
    lines written outside a request have none."""
    async def noisy(request: Request) -> Response:
        logging.getLogger("bulletin.test").warning("working on it")
        return JSONResponse({"ok": True})

    _add_route(app, "/api/test/noisy", noisy)
    logging.getLogger("bulletin.test").warning("before any request")
    response = await client.get("/api/test/noisy", headers={"X-Request-ID": "trace-me"})
    assert response.status_code == 200
    lines = log_lines()
    outside = [line for line in lines if line["message"] == "before any request"]
    inside = [line for line in lines if line["message"] == "working on it"]
    assert len(outside) == 1 and "request_id" not in outside[0]
    assert len(inside) == 1 and inside[0]["request_id"] == "trace-me"
    (access,) = _access(lines)
    assert access["request_id"] == "trace-me"


async def test_the_access_line_has_method_route_template_status_and_duration(
        client: httpx.AsyncClient, log_lines: Callable[[], list[dict[str, Any]]]) -> None:
    """One INFO line per request: the method, the route's template (not the path), the
    status and the duration in milliseconds."""
    await client.get("/api/streams/no-such-story/posts")
    await client.post("/api/streams", json={})
    await client.get("/no/such/thing")
    lines = _access(log_lines())
    assert [(line["method"], line["route"], line["status"], line["level"])
            for line in lines] == [
        ("GET", "/api/streams/{slug}/posts", 404, "INFO"),
        ("POST", "/api/streams", 401, "INFO"),
        ("GET", None, 404, "INFO")]
    assert all(isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
               for line in lines)
    assert "no-such-story" not in json.dumps(lines)
    assert lines[0]["message"].startswith("GET /api/streams/{slug}/posts 404 ")
    assert lines[0]["message"].endswith(" ms")


async def test_probes_and_static_files_are_logged_at_debug(
        app: Starlette, client: httpx.AsyncClient,
        log_lines: Callable[[], list[dict[str, Any]]]) -> None:
    """/healthz, /readyz and static files write their access line at DEBUG, so that a
    load balancer's probes do not flood the log at INFO."""
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 200
    asset = app.state.assets.url("client.js")
    assert (await client.get(asset)).status_code == 200
    assert [(line["route"], line["level"]) for line in _access(log_lines())] == [
        ("/healthz", "DEBUG"), ("/readyz", "DEBUG"), ("/static/{version}/{name}", "DEBUG")]


async def test_an_unexpected_error_is_a_json_500_with_the_request_id(
        client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch,
        log_lines: Callable[[], list[dict[str, Any]]]) -> None:
    """A handler that fails unexpectedly answers 500 in the API's JSON error shape with
    the request id, and its traceback is logged once, with the same id."""
    from bulletin.store import eventlog

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in list_streams")

    monkeypatch.setattr(eventlog, "list_streams", broken)
    response = await client.get("/api/streams", headers={"X-Request-ID": "oops-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.headers["X-Request-ID"] == "oops-1"
    assert response.json() == {"error": {
        "code": "internal_error", "message": response.json()["error"]["message"],
        "details": None, "request_id": "oops-1"}}
    lines = log_lines()
    (error,) = [line for line in lines if line["level"] == "ERROR"]
    assert error["request_id"] == "oops-1" and error["logger"] == "bulletin"
    assert "Traceback" in error["exception"] and "a bug in list_streams" in error["exception"]
    (access,) = _access(lines)
    assert (access["route"], access["status"], access["request_id"]) == (
        "/api/streams", 500, "oops-1")


async def test_an_unexpected_error_on_a_page_is_html_unless_json_is_asked_for(
        client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reader pages answer an unexpected error with an HTML page naming the request id;
    asked with Accept: application/json, the same failure answers in JSON."""
    from bulletin.store import eventlog

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(eventlog, "list_streams", broken)
    page = await client.get("/live", headers={"X-Request-ID": "page-1"})
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    assert "page-1" in page.text
    asked = await client.get("/live", headers={"Accept": "application/json",
                                              "X-Request-ID": "page-2"})
    assert asked.status_code == 500 and asked.headers["content-type"] == "application/json"
    assert asked.json()["error"]["request_id"] == "page-2"


def test_sane_request_ids() -> None:
    """The check a client's id must pass: 1-64 of [A-Za-z0-9._-]."""
    assert requestlog.sane("a") and requestlog.sane("Z9._-" * 12)
    assert not requestlog.sane("") and not requestlog.sane("a" * 65)
    assert not requestlog.sane("a\nb") and not requestlog.sane("é")
