"""/metrics on a real server: values that move with real readers and posts, the client
address as the trusted proxies give it, a port of its own, and `serve --workers 2` summed
in one scrape, right again after a worker is killed and replaced."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from websockets.asyncio.client import ClientConnection

from tests.conftest import EditorLogin

from .conftest import Api, LiveServer, free_port, subscribe, ws_connect
from .test_nginx import nginx  # noqa: F401  (the fixture)
from .test_processes import _workers, create_stream, ws

Values = dict[tuple[str, frozenset[tuple[str, str]]], float]
WEBSOCKET = frozenset({("transport", "websocket")})


def parse(text: str) -> Values:
    from prometheus_client.parser import text_string_to_metric_families
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def scrape(base: str, **kwargs: Any) -> Values:
    async with httpx.AsyncClient(base_url=base) as client:
        r = await client.get("/metrics", **kwargs)
        assert r.status_code == 200, r.text
        return parse(r.text)


async def until(base: str, name: str, labels: frozenset[tuple[str, str]], want: float,
                seconds: float = 10) -> Values:
    """Scrape until ``name`` with ``labels`` is ``want`` (workers copy theirs every second)."""
    values: Values = {}
    for _ in range(int(seconds / 0.1)):
        values = await scrape(base)
        if values.get((name, labels)) == want:
            return values
        await asyncio.sleep(0.1)
    raise AssertionError(f"{name}{dict(labels)} = {values.get((name, labels))}, not {want}")


async def test_metrics_follow_readers_and_posts(server: LiveServer, api: Api) -> None:
    """A reader opens: the connection, stream and subscription gauges say 1; posts: the
    published, fanned-out and delivered counters grow and the latency is measured; the
    reader leaves: peer_left counts it."""
    await api.stream("election")
    before = await scrape(server.base)
    reader = await ws_connect(server.ws_url)
    await subscribe(reader, "election")
    values = await scrape(server.base)
    assert values[("bulletin_connections", WEBSOCKET)] == 1
    assert values[("bulletin_stream_readers", frozenset({("stream", "election")}))] == 1
    assert values[("bulletin_subscriptions", frozenset())] == 1
    for i in range(3):
        await api.post("election", f"update {i}")
    for _ in range(3):
        await reader.recv()
    after = await scrape(server.base)
    grown = {name: after[(name, frozenset())] - before[(name, frozenset())]
             for name in ("bulletin_events_published_total", "bulletin_events_fanned_out_total",
                          "bulletin_frames_delivered_total",
                          "bulletin_delivery_latency_seconds_count")}
    assert grown["bulletin_events_published_total"] == 3
    assert grown["bulletin_events_fanned_out_total"] == 3
    assert grown["bulletin_frames_delivered_total"] >= 4  # subscribed, then three events
    assert grown["bulletin_delivery_latency_seconds_count"] == 3
    await reader.close()
    await until(server.base, "bulletin_disconnects_total",
                frozenset({("code", "none"), ("reason", "peer_left")}), 1)
    values = await until(server.base, "bulletin_connections", WEBSOCKET, 0)
    assert ("bulletin_stream_readers", frozenset({("stream", "election")})) not in values


async def test_an_event_stream_is_counted_but_not_timed(server: LiveServer, api: Api) -> None:
    """An SSE reader shows in the sse gauge, and its request is counted when it starts but
    not put in the duration histogram (it lasts as long as the reader stays)."""
    await api.stream("vote")
    labels = frozenset({("route", "/api/streams/{slug}/events"), ("method", "GET"),
                        ("status", "200")})
    async with httpx.AsyncClient(timeout=httpx.Timeout(5, read=None)) as client, \
            client.stream("GET", f"{server.base}/api/streams/vote/events",
                          headers={"Accept": "text/event-stream"}) as response:
        assert response.status_code == 200
        values = await until(server.base, "bulletin_connections",
                             frozenset({("transport", "sse")}), 1)
        assert values[("bulletin_http_requests_total", labels)] == 1
    values = await until(server.base, "bulletin_connections",
                         frozenset({("transport", "sse")}), 0)
    assert ("bulletin_http_request_duration_seconds_count", labels) not in values


async def test_a_forwarded_header_does_not_make_a_reader_local(server: LiveServer) -> None:
    """Behind the trusted proxy the client is who the proxy says, so a reader's own
    X-Forwarded-For (kept first by a proxy that appends) gets a 404, as does a remote one."""
    async with httpx.AsyncClient(base_url=server.base) as client:
        for forwarded in ("203.0.113.9", "127.0.0.1, 203.0.113.9"):
            r = await client.get("/metrics", headers={"X-Forwarded-For": forwarded})
            assert r.status_code == 404, forwarded
        assert (await client.get("/metrics")).status_code == 200


def _outside_address() -> str:
    """An address of this machine that is not loopback, to call from as a reader would."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: only a route is chosen
            address: str = probe.getsockname()[0]
        except OSError:
            address = "127.0.0.1"
    if ipaddress.ip_address(address).is_loopback:
        pytest.skip("this machine has no address but loopback")
    return address


async def test_readers_through_the_documented_nginx_get_a_404(
        server: LiveServer, nginx: Callable[[list[int]], str]) -> None:  # noqa: F811
    """nginx (docs/nginx.conf) connects to Bulletin from loopback but passes on the
    reader's address: a reader calling from outside gets a 404 for /metrics through it,
    even with a forged X-Forwarded-For: 127.0.0.1; a local call through it still reads."""
    base = nginx([server.port])
    outside = httpx.AsyncHTTPTransport(local_address=_outside_address())
    async with httpx.AsyncClient(transport=outside) as client:
        for headers in ({}, {"X-Forwarded-For": "127.0.0.1"}):
            r = await client.get(f"{base}/metrics", headers=headers)
            assert r.status_code == 404, headers
        assert (await client.get(f"{base}/api/streams")).status_code == 200
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{base}/metrics")).status_code == 200


async def test_a_port_of_its_own(start_server: Callable[..., Any]) -> None:
    """BULLETIN_METRICS_PORT serves the metrics there, only them, and not on the main port."""
    port = free_port()
    server: LiveServer = await start_server(metrics_port=port)
    own = f"http://127.0.0.1:{port}"
    assert "bulletin_connections" in str(await scrape(own))
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{own}/api/streams")).status_code == 404
        assert (await client.get(f"{server.base}/metrics")).status_code == 404
        assert (await client.get(f"{server.base}/api/streams")).status_code == 200


def _shared_dir(worker: int) -> Path:
    environ = Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
    for entry in environ:
        if entry.startswith(b"PROMETHEUS_MULTIPROC_DIR="):
            return Path(entry.split(b"=", 1)[1].decode())
    raise AssertionError(f"worker {worker} has no PROMETHEUS_MULTIPROC_DIR")


def _worker_readers(directory: Path, pid: int) -> float:
    """The WebSocket connections one worker last copied into the shared files."""
    found = directory / f"gauge_livesum_{pid}.db"
    if not found.exists():
        return 0
    with tempfile.TemporaryDirectory() as alone:
        shutil.copy(found, alone)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=alone)  # type: ignore[no-untyped-call]
        return sum(s.value for family in registry.collect() for s in family.samples
                   if s.name == "bulletin_connections" and s.labels == {"transport": "websocket"})


async def test_one_scrape_sums_every_worker_and_survives_a_kill(
    serve: Callable[..., tuple[subprocess.Popen[str], str]], pg_editor: EditorLogin,
    process_env: dict[str, str],
) -> None:
    """Under `serve --workers 2` (metrics on a port of their own), one scrape counts the
    readers of both workers; after a worker is killed with SIGKILL and replaced, the gauge
    counts the survivors; the shared directory is gone once the supervisor stops."""
    metrics_port = free_port()
    process_env["BULLETIN_METRICS_PORT"] = str(metrics_port)
    supervisor, main = serve("--workers", "2")
    base = f"http://127.0.0.1:{metrics_port}"
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{main}/metrics")).status_code == 404
    await create_stream(main, pg_editor)
    workers = sorted(_workers(supervisor))
    directory = _shared_dir(workers[0])
    sockets: list[ClientConnection] = []
    for _ in range(5):  # the kernel picks the worker: open more until both have some
        for _ in range(6):
            sockets.append(await ws_connect(ws(main)))
            await subscribe(sockets[-1], "s")
        await until(base, "bulletin_connections", WEBSOCKET, len(sockets))
        shares = {pid: _worker_readers(directory, pid) for pid in workers}
        if all(shares.values()):
            break
    assert sum(shares.values()) == len(sockets) and all(shares.values()), shares
    memory = {labels for (name, labels) in (await scrape(base))
              if name == "process_resident_memory_bytes"}
    assert {dict(labels)["pid"] for labels in memory} == {str(pid) for pid in workers}
    victim = workers[0]
    os.kill(victim, signal.SIGKILL)
    for _ in range(100):
        replaced = _workers(supervisor)
        if len(replaced) == 2 and victim not in replaced:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"worker {victim} was not replaced")
    survivors = shares[workers[1]]
    await until(base, "bulletin_connections", WEBSOCKET, survivors)
    for _ in range(2):
        sockets.append(await ws_connect(ws(main)))
        await subscribe(sockets[-1], "s")
    values = await until(base, "bulletin_connections", WEBSOCKET, survivors + 2)
    assert values[("bulletin_connections_opened_total", frozenset())] >= len(sockets)
    for sock in sockets:
        await sock.close()
    supervisor.send_signal(signal.SIGTERM)
    supervisor.wait(20)
    assert not directory.exists()
