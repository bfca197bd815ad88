"""Real `bulletin serve` processes on PostgreSQL and Redis: concurrent posting from
several processes, a process killed with SIGKILL under load, and `--workers`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import EditorLogin
from tests.test_cli import _stop, run

from .readers import Reader, SseReader, WsReader, exactly_once_in_order

Started = tuple[subprocess.Popen[str], str]


def ws(base: str) -> str:
    return base.replace("http://", "ws://") + "/ws"


async def create_stream(base: str, editor: EditorLogin) -> None:
    async with httpx.AsyncClient(base_url=base, headers=editor.headers) as client:
        r = await client.post("/api/streams", json={"slug": "s", "title": "S", "status": "live"})
        assert r.status_code == 201, r.text


async def stream_seq(base: str) -> int:
    async with httpx.AsyncClient(base_url=base) as client:
        seq: int = (await client.get("/api/streams/s")).json()["seq"]
        return seq


async def test_concurrent_posting_from_several_processes_never_shares_or_skips_a_seq(
    serve: Callable[..., Started], pg_editor: EditorLogin, readers: Callable[..., Reader],
) -> None:
    """Three processes taking posts to one stream at once: the log is 1..N with no gap
    and no repeat, and readers of every process get it all, once, in order."""
    bases = [serve()[1] for _ in range(3)]
    await create_stream(bases[0], pg_editor)
    group = [readers(WsReader, [ws(base)]) for base in bases]
    await asyncio.wait_for(asyncio.gather(*(r.subscribed.wait() for r in group)), 10)

    async def poster(base: str) -> list[int]:
        seqs = []
        async with httpx.AsyncClient(base_url=base, headers=pg_editor.headers,
                                     timeout=30) as client:
            for i in range(20):
                r = await client.post("/api/streams/s/posts", json={"body": f"{base} {i}"})
                assert r.status_code == 201, r.text
                seqs.append(r.json()["seq"])
        return seqs

    results = await asyncio.gather(*(poster(base) for base in bases for _ in range(3)))
    taken = sorted(seq for seqs in results for seq in seqs)
    assert taken == list(range(1, 181))
    async with httpx.AsyncClient(base_url=bases[0]) as client:
        log = (await client.get("/api/streams/s/events?since=0&limit=500")).json()["events"]
    assert [e["seq"] for e in log] == list(range(1, 181))
    for reader in group:
        await reader.wait_for(180)
    await asyncio.sleep(0.2)
    for reader in group:
        exactly_once_in_order(reader, 180)


async def test_a_process_killed_under_load_loses_its_readers_to_another_without_loss(
    serve: Callable[..., Started], pg_editor: EditorLogin, readers: Callable[..., Reader],
) -> None:
    """SIGKILL one of two processes while posts flow through both: its WebSocket and SSE
    readers reconnect to the other with their last seq and end with every event exactly
    once, in order; so do the other's readers."""
    process_a, a = serve()
    _process_b, b = serve()
    await create_stream(a, pg_editor)
    movers = [readers(WsReader, [ws(a), ws(b)]) for _ in range(4)]
    movers += [readers(SseReader, [a, b]) for _ in range(2)]
    stayers = [readers(WsReader, [ws(b)]), readers(SseReader, [b])]
    await asyncio.wait_for(asyncio.gather(*(r.subscribed.wait() for r in movers + stayers)),
                           10)
    stop = asyncio.Event()

    async def poster(base: str) -> None:
        async with httpx.AsyncClient(base_url=base, headers=pg_editor.headers,
                                     timeout=10) as client:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    await client.post("/api/streams/s/posts", json={"body": f"{base} {i}"})
                except httpx.HTTPError:
                    await asyncio.sleep(0.05)  # A is gone; the other poster goes on

    posters = [asyncio.create_task(poster(base)) for base in (a, a, b, b)]
    await movers[0].wait_for(30)
    process_a.send_signal(signal.SIGKILL)
    process_a.wait(10)
    head_at_kill = await stream_seq(b)
    for reader in movers:
        await reader.wait_for(head_at_kill + 20)
    stop.set()
    await asyncio.gather(*posters)
    head = await stream_seq(b)
    for reader in movers + stayers:
        await reader.wait_for(head)
    await asyncio.sleep(0.3)
    for reader in movers + stayers:
        exactly_once_in_order(reader, head)
    assert all(reader.connections >= 2 for reader in movers)
    assert all(reader.connections == 1 for reader in stayers)


def test_several_workers_need_a_shared_broker(process_env: dict[str, str]) -> None:
    """`serve --workers 2` with the in-process broker is refused with one clear line."""
    result = run(["serve", "--workers", "2"], {**process_env, "BULLETIN_BROKER_URL": "memory://"})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("bulletin: error: --workers 2 needs a broker shared by")
    assert "BULLETIN_BROKER_URL=redis://" in lines[0]


def _workers(supervisor: subprocess.Popen[str]) -> set[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    pids = set()
    for task in Path(f"/proc/{supervisor.pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline:
                pids.add(int(child))
    return pids


async def test_workers_share_the_port_and_a_killed_worker_is_replaced(
    serve: Callable[..., Started], pg_editor: EditorLogin, readers: Callable[..., Reader],
    process_env: dict[str, str],
) -> None:
    """`serve --workers 2` serves one port from two processes whose readers all get every
    post; a worker killed with SIGKILL is replaced, its readers resume on the port with
    nothing lost, and SIGTERM stops the lot."""
    process_env["BULLETIN_LOG_LEVEL"] = "info"  # for the supervisor's last line
    supervisor, base = serve("--workers", "2")
    assert len(_workers(supervisor)) == 2
    await create_stream(base, pg_editor)
    group = [readers(WsReader, [ws(base)]) for _ in range(8)]
    await asyncio.wait_for(asyncio.gather(*(r.subscribed.wait() for r in group)), 10)
    async with httpx.AsyncClient(base_url=base, headers=pg_editor.headers, timeout=10) as client:
        for i in range(10):
            assert (await client.post("/api/streams/s/posts",
                                      json={"body": f"p{i}"})).status_code == 201
        victim = min(_workers(supervisor))
        os.kill(victim, signal.SIGKILL)
        for _ in range(100):
            workers = _workers(supervisor)
            if len(workers) == 2 and victim not in workers:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"worker {victim} was not replaced")
        for i in range(10, 20):
            for _ in range(50):  # the kernel may hand a request to the dying worker's queue
                try:
                    r = await client.post("/api/streams/s/posts", json={"body": f"p{i}"})
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            assert r.status_code == 201
    for reader in group:
        await reader.wait_for(20)
    await asyncio.sleep(0.2)
    for reader in group:
        exactly_once_in_order(reader, 20)
    output = await asyncio.to_thread(_stop, supervisor)
    assert supervisor.returncode == 0, output
    assert f"worker {victim} exited with status -9" in output
    last = json.loads(output.rstrip().splitlines()[-1])
    assert (last["logger"], last["worker"]) == ("bulletin.supervisor", 0)
    assert last["message"].endswith("stopped")
