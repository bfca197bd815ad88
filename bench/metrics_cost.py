"""What the metrics cost: the burst benchmark with metrics off, then on and scraped.

Bulletin runs pinned to one core as in ``run.py``; subscribers connect from the other.
Rounds alternate: a server with ``BULLETIN_METRICS=0``, then one with the metrics on and
a scraper reading ``/metrics`` every second for the whole burst; each round starts a
fresh server, so that neither inherits the other's heap. The figure is the burst's
deliveries per second (docs/benchmarks.md: "Metrics").

    .venv/bin/python bench/metrics_cost.py                  # the figures in the docs
    .venv/bin/python bench/metrics_cost.py --quick          # a smoke run
    .venv/bin/python bench/metrics_cost.py --parts          # what each part costs, alone

``--parts`` times, in this process and best of several tries (so that other work on the
machine barely shows), what turning the metrics on adds: one scrape with as many readers
as the burst has, the HTTP middleware around one request, and the latency measurement of
one event; and, from those, what they add to the burst's own CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import Swarm, raise_fd_limit
from run import (
    STREAM,
    BulletinPublisher,
    Target,
    calibrate,
    free_port,
    log,
    scenario_burst,
    start_bulletin,
)


async def scraper(base: str, stop: asyncio.Event, sizes: list[int]) -> None:
    """GET /metrics every second until ``stop``, as Prometheus would."""
    async with httpx.AsyncClient(timeout=30) as client:
        while not stop.is_set():
            r = await client.get(f"{base}/metrics")
            assert r.status_code == 200, r.status_code
            sizes.append(len(r.content))
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except TimeoutError:
                pass


async def one_round(args: argparse.Namespace, metrics: bool) -> dict[str, Any]:
    os.environ["BULLETIN_METRICS"] = "1" if metrics else "0"
    workdir = Path(tempfile.mkdtemp(prefix="bulletin-metrics-bench-"))
    port = free_port()
    proc, token = start_bulletin(workdir, port, args.server_core, None)
    try:
        publisher = BulletinPublisher(port, token)
        await publisher.create_stream()
        await calibrate(publisher, port, args.frame_bytes)
        target = Target("bulletin", port, proc, publisher.publish)
        sources = tuple(f"127.0.0.{i}" for i in range(2, args.sources + 2))
        swarm = Swarm("127.0.0.1", port, sources=sources)
        await swarm.connect(args.subscribers, STREAM)
        await asyncio.sleep(1)
        stop, sizes = asyncio.Event(), []
        scraping = (asyncio.create_task(scraper(f"http://127.0.0.1:{port}", stop, sizes))
                    if metrics else None)
        result = await scenario_burst(target, swarm, args.burst_posts, args.concurrency)
        stop.set()
        if scraping is not None:
            await scraping
        result["metrics"] = metrics
        result["scrapes"] = len(sizes)
        result["scrape_bytes"] = max(sizes, default=0)
        await swarm.close()
        await publisher.client.aclose()
    finally:
        proc.stop()
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rounds = []
    for n in range(args.rounds):
        for metrics in (False, True):
            log(f"round {n + 1}: metrics {'on, scraped every second' if metrics else 'off'}")
            rounds.append(await one_round(args, metrics))
    return {"settings": vars(args).copy(), "rounds": rounds}


class _Outlet:
    def write(self, data: bytes) -> int:
        return 0

    def close(self, code: Any) -> None:
        pass


def _best(fn: Any, repeat: int, number: int) -> float:
    """Best seconds per call of ``fn`` over ``repeat`` tries of ``number`` calls."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - started) / number)
    return best


async def parts(args: argparse.Namespace) -> dict[str, Any]:
    """Each added cost, alone (see the module's docstring)."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from bulletin.core.hub import Hub
    from bulletin.core.needs import LoadStream, StreamInfo
    from bulletin.core.prepared import Encoding
    from bulletin.live.brokers.base import BrokerState
    from bulletin.settings import Settings
    from bulletin.web.metrics import Metrics
    from bulletin.web.requestmetrics import RequestMetrics

    settings = Settings(secret_key="k" * 40)
    hub = Hub()

    class Broker:
        state = BrokerState.CONNECTED
        reconnects = 0

    class Db:
        def pool_in_use(self) -> int:
            return 0

    class Live:  # what Metrics reads of a HubDriver
        def __init__(self) -> None:
            self.hub, self.broker, self.db = hub, Broker(), Db()
            self.published = self.gap_reads = self.repaired = self.resyncs = 0
            self.observe_latency = None

    for n in range(args.subscribers):
        sub = hub.connect(_Outlet(), Encoding.FRAME)
        needs = hub.subscribe(sub, f"s{n % 50}", None)
        for need in needs:
            if isinstance(need, LoadStream):
                hub.stream_loaded(need.stream, need.token, StreamInfo("live", 0), [])
    metrics = Metrics(settings)
    metrics.start(Live())  # type: ignore[arg-type]
    scrape = _best(metrics.render, 5, 20)

    async def endpoint(request: Any) -> JSONResponse:
        return JSONResponse({"ok": True}, 201)

    inner = Starlette(routes=[Route("/api/streams/{slug}/posts", endpoint, methods=["POST"])])
    inner.state.metrics = metrics
    measured = RequestMetrics(inner)
    scope = {"type": "http", "method": "POST", "path": "/api/streams/bench/posts",
             "raw_path": b"/api/streams/bench/posts", "query_string": b"", "headers": [],
             "root_path": "", "scheme": "http", "server": ("127.0.0.1", 8000),
             "client": ("127.0.0.1", 5000), "http_version": "1.1"}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        pass

    async def requests(app: Any, number: int) -> float:
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(number):
                await app(dict(scope, app=inner), receive, send)
            best = min(best, (time.perf_counter() - started) / number)
        return best

    bare = await requests(inner, 2000)
    wrapped = await requests(measured, 2000)
    observe = _best(lambda: metrics.latency.observe(0.004), 5, 20000)
    # The burst: posts requests and events, one scrape a second for its length.
    seconds = args.burst_seconds
    added = args.burst_posts * (max(0.0, wrapped - bare) + observe) + seconds * scrape
    return {"subscribers": args.subscribers, "scrape_ms": round(scrape * 1000, 3),
            "middleware_us_per_request": round((wrapped - bare) * 1e6, 2),
            "latency_observe_us_per_event": round(observe * 1e6, 2),
            "burst_seconds": seconds, "added_ms_per_burst": round(added * 1000, 1),
            "added_share_of_burst": round(added / seconds, 5)}


def summary(results: dict[str, Any]) -> str:
    lines = ["| round | metrics | deliveries/s | server µs/delivery | lost | dup | scrapes |",
             "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for i, r in enumerate(results["rounds"]):
        lines.append(f"| {i // 2 + 1} | {'on' if r['metrics'] else 'off'} | "
                     f"{r['deliveries_per_second']} | {r['server_cpu_us_per_delivery']} | "
                     f"{r['lost']} | {r['duplicates']} | {r['scrapes']} |")
    off = [r["deliveries_per_second"] for r in results["rounds"] if not r["metrics"]]
    on = [r["deliveries_per_second"] for r in results["rounds"] if r["metrics"]]
    if off and on:
        lines.append("")
        lines.append(f"median deliveries/s: off {statistics.median(off):.0f}, on "
                     f"{statistics.median(on):.0f} "
                     f"({statistics.median(on) / statistics.median(off):.3f} x)")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="the burst with metrics off and on")
    parser.add_argument("--subscribers", type=int, default=5_000)
    parser.add_argument("--burst-posts", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--frame-bytes", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--generator-core", type=int, default=1)
    parser.add_argument("--sources", type=int, default=4)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--parts", action="store_true", help="time each added cost alone")
    parser.add_argument("--burst-seconds", type=float, default=8.3,
                        help="--parts: the burst's length (5,000 x 200 at 120,000/s)")
    args = parser.parse_args()
    if args.parts:
        print(json.dumps(asyncio.run(parts(args)), indent=2))
        return 0
    if args.quick:
        args.subscribers, args.burst_posts, args.rounds = 100, 20, 1
    if (os.cpu_count() or 1) < 2:
        args.server_core = args.generator_core = None
    if args.generator_core is not None:
        os.sched_setaffinity(0, {args.generator_core})
    raise_fd_limit()
    results = asyncio.run(run(args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    print(summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
