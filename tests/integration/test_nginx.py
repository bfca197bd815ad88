"""The documented nginx configuration (docs/nginx.conf), run by a real nginx in front of
two Bulletin servers sharing a database and Redis."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import EditorLogin, free_tcp_port, service_unavailable

from .conftest import Api
from .readers import Reader, SseReader, WsReader, exactly_once_in_order

CONF = Path(__file__).resolve().parents[2] / "docs" / "nginx.conf"


def render(conf: str, *, port: int, upstreams: list[int]) -> str:
    """The documented file with the test's listening port and Bulletin servers."""
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=0;" for p in upstreams)
    conf, listens = re.subn(r"(?m)^(\s*)listen 80;", rf"\1listen 127.0.0.1:{port};", conf)
    conf, found = re.subn(r"(?m)^\s*server 10\.0\.1\.\d+:8000 max_fails=0;\n", "", conf)
    conf = conf.replace("    upstream bulletin {\n", "    upstream bulletin {\n" + servers + "\n")
    assert listens == 1 and found == 2, "docs/nginx.conf changed shape: update render()"
    return conf


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Callable[[list[int]], str]]:
    """Starts nginx with the documented configuration; returns its base URL."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        service_unavailable("nginx is not installed (apt-get install nginx)")
    processes: list[subprocess.Popen[bytes]] = []

    def start(upstreams: list[int]) -> str:
        port = free_tcp_port()
        (tmp_path / "logs").mkdir(exist_ok=True)
        conf = tmp_path / "nginx.conf"
        conf.write_text(render(CONF.read_text(), port=port, upstreams=upstreams))
        process = subprocess.Popen(
            [binary, "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "error.log"),
             "-g", f"daemon off; pid {tmp_path / 'nginx.pid'};"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        processes.append(process)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if process.poll() is not None:
                errors = process.stderr.read() if process.stderr else b""
                raise AssertionError(f"nginx exited: {errors!r}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return f"http://127.0.0.1:{port}"
            except OSError:
                time.sleep(0.05)
        raise AssertionError("nginx did not start")

    yield start
    for process in processes:
        process.terminate()
        process.wait(10)
        if process.stderr:
            process.stderr.close()



def test_render_keeps_the_documented_settings() -> None:
    """The rendered file still upgrades WebSockets and does not buffer responses."""
    conf = render(CONF.read_text(), port=1234, upstreams=[1, 2])
    assert "listen 127.0.0.1:1234;" in conf
    assert "server 127.0.0.1:1;" in conf.replace(" max_fails=0", "")
    for directive in ("proxy_http_version 1.1;", "proxy_set_header Upgrade $http_upgrade;",
                      "proxy_buffering off;", "X-Forwarded-Proto $scheme;"):
        assert directive in conf


async def test_websocket_and_sse_readers_through_nginx_receive_every_post(
    serve: Callable[..., tuple[Any, str]], pg_editor: EditorLogin,
    nginx: Callable[[list[int]], str], readers: Callable[..., Reader],
) -> None:
    """Through nginx with the documented configuration, in front of two `bulletin serve`
    processes sharing PostgreSQL and Redis, WebSocket and SSE readers (spread over both)
    get every post once, in order, as it is made."""
    ports = [int(serve()[1].rsplit(":", 1)[1]) for _ in range(2)]
    base = nginx(ports)
    ws_url = base.replace("http://", "ws://") + "/ws"
    api = Api(base, pg_editor)
    await api.stream("s")
    group = [readers(WsReader, [ws_url]) for _ in range(4)]
    group += [readers(SseReader, [base]) for _ in range(4)]
    await asyncio.wait_for(asyncio.gather(*(r.subscribed.wait() for r in group)), 10)
    for i in range(10):
        post = await api.post("s", f"through nginx {i}")
        # Each post is seen by every reader before the next is made: nothing waits in a
        # buffer for more data to arrive.
        for reader in group:
            await reader.wait_for(post["seq"], seconds=5)
    for reader in group:
        exactly_once_in_order(reader, 10)
    async with httpx.AsyncClient(base_url=base) as client:
        # Round robin: these reach both processes, as the readers above did.
        checks = [(await client.get("/readyz")).json()["checks"] for _ in range(4)]
    assert checks == [{"database": "ok", "broker": "ok"}] * 4
    await api.client.aclose()


def test_gzip_covers_css_js_and_json_and_never_event_streams() -> None:
    """The documented file compresses CSS, JavaScript and JSON, and text/event-stream is
    not among the types it compresses."""
    conf = CONF.read_text()
    assert re.search(r"(?m)^\s*gzip on;", conf)
    (types,) = re.findall(r"(?m)^\s*gzip_types([^;]+);", conf)
    listed = set(types.split())
    assert {"text/css", "text/javascript", "application/javascript",
            "application/json"} <= listed
    assert "text/event-stream" not in listed and "*" not in listed


async def test_nginx_gzips_assets_and_json_but_not_server_sent_events(
    serve: Callable[..., tuple[Any, str]], pg_editor: EditorLogin,
    nginx: Callable[[list[int]], str],
) -> None:
    """Through the documented nginx, a client that accepts gzip gets the page's CSS and
    JavaScript and the API's JSON compressed (and they decode to what Bulletin sent),
    while an SSE stream of the same client stays uncompressed and unbuffered: the post
    arrives at once."""
    _process, direct = serve()
    base = nginx([int(direct.rsplit(":", 1)[1])])
    api = Api(base, pg_editor)
    await api.stream("s")
    await api.post("s", "gzip or not")
    gzip = {"Accept-Encoding": "gzip"}
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        page = await client.get("/live/s", headers={"Accept": "text/html", **gzip})
        assert page.headers.get("content-encoding") == "gzip"
        css = re.search(r'href="(/static/[^"]+\.css)"', page.text)
        js = re.search(r'src="(/static/[^"]+\.js)"', page.text)
        assert css and js, "the reader page links no stylesheet or script"
        for path, kind in ((css[1], "text/css"), (js[1], "text/javascript"),
                           ("/api/openapi.json", "application/json")):
            response = await client.get(path, headers=gzip)
            assert response.status_code == 200, path
            assert response.headers["content-type"].startswith(kind), path
            assert response.headers.get("content-encoding") == "gzip", path
            assert "Accept-Encoding" in response.headers.get("vary", ""), path
            plain = await client.get(path, headers={"Accept-Encoding": "identity"})
            assert "content-encoding" not in plain.headers, path
            assert response.content == plain.content, path  # httpx decoded the gzip
        sse = {"Accept": "text/event-stream", **gzip}
        async with client.stream("GET", "/api/streams/s/events", params={"since": 0},
                                 headers=sse) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert "content-encoding" not in stream.headers
            lines = stream.aiter_lines()
            await asyncio.wait_for(_until(lines, "gzip or not"), 5)
    await api.client.aclose()


async def _until(lines: Any, text: str) -> None:
    async for line in lines:
        if line.startswith("data:") and text in line:
            return
    raise AssertionError(f"the stream ended without {text!r}")
