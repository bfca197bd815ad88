"""uvicorn's private parts that ``bulletin serve``'s own protocols (server/live/uvicorn_ws.py
and uvicorn_http.py) build on are all there, in the uvicorn installed; a uvicorn without
one fails here by name, with its version, rather than with an AttributeError under load.

The sans-I/O WebSocket protocol's ``close_timer``, ``close_timeout`` and ``disconnected``
appeared in uvicorn 0.52.1, hence the floor in pyproject.toml."""

from __future__ import annotations

import importlib
import inspect
import re
from importlib.metadata import version

import pytest

UVICORN = version("uvicorn")
WS_MODULE = "uvicorn.protocols.websockets.websockets_sansio_impl"
HTTP_MODULE = "uvicorn.protocols.http.httptools_impl"

# (module, class): (methods Bulletin overrides or calls, attributes it reads or sets).
RELIED_ON: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {
    (WS_MODULE, "WebSocketsSansIOProtocol"): (
        ("send", "run_asgi", "handle_connect", "connection_lost", "data_received",
         "handle_text", "handle_bytes", "handle_cont", "handle_ping", "keepalive_timeout",
         "stop_keepalive", "shutdown"),
        ("transport", "loop", "conn", "queue", "writable", "scope", "request", "response",
         "handshake_complete", "close_sent", "disconnected", "close_timer", "close_timeout",
         "read_paused", "frames"),
    ),
    (HTTP_MODULE, "HttpToolsProtocol"): (
        ("connection_made", "connection_lost", "data_received", "shutdown",
         "send_400_response", "timeout_keep_alive_handler", "on_response_complete",
         "on_message_begin", "on_url", "on_header", "on_headers_complete",
         "on_message_complete", "handle_websocket_upgrade", "_start_asgi_task",
         "_unset_keepalive_if_required", "_should_upgrade", "_unsupported_upgrade_warning"),
        ("transport", "loop", "logger", "parser", "pipeline", "cycle", "scope", "client",
         "server_state"),
    ),
    (HTTP_MODULE, "RequestResponseCycle"): (
        ("run_asgi",),
        ("response_started", "response_complete", "disconnected", "message_event"),
    ),
    ("uvicorn.server", "ServerState"): ((), ("default_headers",)),
}


def _assigned(cls: type, attribute: str) -> bool:
    """Whether some method of ``cls`` (or of a base class) sets ``self.<attribute>``."""
    pattern = re.compile(rf"\bself\.{re.escape(attribute)}\s*(?::[^=\n]+)?=(?!=)")
    for klass in cls.__mro__:
        if klass is object:
            continue
        if attribute in vars(klass):
            return True
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        if pattern.search(source):
            return True
    return False


def _load(module: str, name: str) -> type:
    try:
        found: type = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        pytest.fail(f"uvicorn {UVICORN} has no {module}.{name} ({exc}); Bulletin's "
                    "protocols need uvicorn>=0.52.1 (see pyproject.toml)")
    return found


@pytest.mark.parametrize(("module", "name"), list(RELIED_ON), ids=[n for _m, n in RELIED_ON])
def test_uvicorn_has_what_bulletin_protocols_build_on(module: str, name: str) -> None:
    """Every method and attribute of uvicorn's that Bulletin's protocols use exists in the
    installed uvicorn; the failure names each missing one and the installed version."""
    cls = _load(module, name)
    methods, attributes = RELIED_ON[(module, name)]
    missing = [f"{name}.{m}()" for m in methods if not callable(getattr(cls, m, None))]
    missing += [f"{name}.{a}" for a in attributes if not _assigned(cls, a)]
    assert not missing, (f"uvicorn {UVICORN} lacks {', '.join(missing)}, which "
                         f"server/live/uvicorn_ws.py / uvicorn_http.py rely on: install "
                         f"uvicorn>=0.52.1 (pyproject.toml's floor)")


def test_the_http_module_has_its_status_lines() -> None:
    """``STATUS_LINE`` (the ready-made status lines Bulletin's 408 and 431 use) exists."""
    status_line = getattr(importlib.import_module(HTTP_MODULE), "STATUS_LINE", None)
    assert status_line is not None and status_line[431].startswith(b"HTTP/1.1 431"), (
        f"uvicorn {UVICORN}: {HTTP_MODULE}.STATUS_LINE is missing or changed shape")


def test_websockets_connection_has_what_the_protocol_calls() -> None:
    """The websockets ``ServerProtocol`` behind uvicorn's ``conn`` has the calls
    uvicorn_ws.py makes on it directly (``send_close``, ``fail``, ``data_to_send``,
    ``parser_exc``)."""
    from websockets.server import ServerProtocol

    conn = ServerProtocol()
    missing = [m for m in ("send_close", "fail", "data_to_send")
               if not callable(getattr(conn, m, None))]
    missing += [] if hasattr(conn, "parser_exc") else ["parser_exc"]
    assert not missing, f"websockets {version('websockets')} lacks {', '.join(missing)}"


def test_the_floor_in_pyproject_is_the_one_named_here() -> None:
    """pyproject.toml's uvicorn floor is the version these messages tell people to
    install."""
    import tomllib
    from pathlib import Path

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    assert "uvicorn[standard]>=0.52.1" in dependencies
