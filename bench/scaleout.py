"""Fan-out across processes: two Bulletin processes and Redis against one process.

The same subscribers and the same posts, in one run, on the same CPU budget: every server
side process (one Bulletin with the in-process broker; or two Bulletins, each followed by
half the subscribers, and a private redis-server between them) is pinned to core 0, the
load generator to core 1. Posts go through the HTTP API (alternating between the two
processes in the second case), so each one crosses Redis to reach the other process's
half of the readers.

- burst: P posts as fast as they are accepted: deliveries per second;
- rate:  posts at a steady rate: p50/p99/max delivery latency.

For each phase it records the CPU time of the Bulletin processes, of redis-server and of
the generator, from /proc.

    .venv/bin/python bench/scaleout.py                # the figures in docs/benchmarks.md
    .venv/bin/python bench/scaleout.py --quick        # a smoke run (seconds)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import Swarm, raise_fd_limit
from run import (
    ROOT,
    STREAM,
    BulletinPublisher,
    Proc,
    bulletin_env,
    calibrate,
    free_port,
    log,
    own_cpu,
    pinned,
    unread_bytes,
    wait_port,
)


def fresh_database(base_url: str | None, workdir: Path, name: str) -> str | None:
    """A new, empty database for one configuration: a SQLite file under ``workdir`` by
    default, or a PostgreSQL database named after ``base_url``'s, created anew."""
    if base_url is None:
        return f"sqlite+aiosqlite:///{workdir / name}.db"
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(base_url)
    database = f"{url.database}_{name}"
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False)

    async def recreate() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{database}"')
        finally:
            await conn.close()

    asyncio.run(recreate())
    return url.set(database=database).render_as_string(hide_password=False)


def prepare(env: dict[str, str]) -> str:
    """Migrate, create an editor and a token; returns the token."""
    cli = [sys.executable, "-m", "bulletin.cli"]
    subprocess.run([*cli, "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True)
    username = f"bench{os.getpid()}"
    subprocess.run([*cli, "editor", "create", username, "--admin", "--password-stdin"],
                   env=env, cwd=ROOT, check=True, input=b"bench-password-123\n",
                   capture_output=True)
    return subprocess.run([*cli, "token", "create", username, "--name", "bench"], env=env,
                          cwd=ROOT, check=True, capture_output=True).stdout.decode().split()[-1]


def serve(env: dict[str, str], port: int, core: int | None) -> Proc:
    popen = subprocess.Popen([sys.executable, "-m", "bulletin.cli", "serve", "--port", str(port)],
                             env=env, cwd=ROOT, preexec_fn=pinned(core),
                             stdout=subprocess.DEVNULL)
    wait_port(port, popen)
    return Proc(popen)


def start_redis(workdir: Path, port: int, core: int | None) -> Proc:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    popen = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no", "--dir", str(workdir)], preexec_fn=pinned(core), stdout=subprocess.DEVNULL)
    wait_port(port, popen)
    return Proc(popen)


@dataclass
class Setup:
    """One configuration under test: its processes, ports and publishers."""

    name: str
    servers: list[Proc]
    ports: list[int]
    publishers: list[BulletinPublisher]
    redis: Proc | None = None
    extra: list[Proc] = field(default_factory=list)

    def cpu(self) -> tuple[float, float]:
        """CPU seconds of the Bulletin processes, and of redis-server."""
        return (sum(p.cpu_seconds() for p in self.servers),
                self.redis.cpu_seconds() if self.redis else 0.0)

    def stop(self) -> None:
        for proc in [*self.servers, *([self.redis] if self.redis else [])]:
            proc.stop()


@contextmanager
def measured(setup: Setup) -> Iterator[dict[str, float]]:
    figures: dict[str, float] = {}
    wall, (server, redis), gen = time.perf_counter(), setup.cpu(), own_cpu()
    try:
        yield figures
    finally:
        seconds = time.perf_counter() - wall
        server_now, redis_now = setup.cpu()
        figures.update({
            "server_cpu_pct": round(100 * (server_now - server) / seconds, 1),
            "redis_cpu_pct": round(100 * (redis_now - redis) / seconds, 1),
            "redis_cpu_seconds": round(redis_now - redis, 3),
            "generator_cpu_pct": round(100 * (own_cpu() - gen) / seconds, 1),
        })


async def burst(setup: Setup, swarm: Swarm, posts: int, concurrency: int) -> dict[str, Any]:
    phase = swarm.start_phase(posts)
    indexes = iter(range(posts))
    publishers = setup.publishers

    async def worker(n: int) -> None:
        for i in indexes:
            await publishers[(i + n) % len(publishers)].publish(i, phase)

    backlog: list[int] = []

    async def sample() -> None:
        while True:
            await asyncio.sleep(0.25)
            backlog.append(sum(unread_bytes(port) for port in setup.ports))

    sampler = asyncio.create_task(sample())
    with measured(setup) as figures:
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        await swarm.wait_delivered(posts * len(swarm.subscribers))
    sampler.cancel()
    result: dict[str, Any] = dict(swarm.report(phase))
    result["deliveries_per_second"] = (round(result["delivered"] / result["seconds"])
                                       if result["seconds"] else 0)
    result["generator_unread_bytes"] = (
        round(sum(backlog) / len(backlog) / len(swarm.subscribers)) if backlog else 0)
    server_cpu = figures["server_cpu_pct"] / 100 * result["seconds"]
    result["server_cpu_us_per_delivery"] = (
        round(server_cpu / result["delivered"] * 1e6, 2) if result["delivered"] else 0)
    result.update(figures)
    return result


async def rate(setup: Setup, swarm: Swarm, posts: int, per_second: float) -> dict[str, Any]:
    phase = swarm.start_phase(posts)
    started = time.perf_counter()
    sends: list[asyncio.Task[None]] = []
    publishers = setup.publishers
    with measured(setup) as figures:
        for i in range(posts):
            await asyncio.sleep(max(0.0, started + i / per_second - time.perf_counter()))
            sends.append(asyncio.create_task(publishers[i % len(publishers)].publish(i, phase)))
        await asyncio.gather(*sends)
        await swarm.wait_delivered(posts * len(swarm.subscribers))
    result: dict[str, Any] = dict(swarm.report(phase))
    result.update(figures)
    return result


async def measure(setup: Setup, args: argparse.Namespace,
                  sources: tuple[str, ...]) -> dict[str, Any]:
    first = setup.publishers[0]
    await first.create_stream()
    await calibrate(first, setup.ports[0], args.frame_bytes)
    for publisher in setup.publishers[1:]:
        publisher.filler = first.filler
    swarm = Swarm("127.0.0.1", setup.ports[0], sources=sources)
    share = args.subscribers // len(setup.ports)
    for port in setup.ports:
        await swarm.connect(share, STREAM, port=port)
    results: dict[str, Any] = {}
    log(f"{setup.name}: burst, {len(swarm.subscribers)} subscribers x {args.burst_posts}")
    results["burst"] = await burst(setup, swarm, args.burst_posts, args.concurrency)
    await asyncio.sleep(1)
    log(f"{setup.name}: rate, {args.rate} posts/s x {args.rate_posts}")
    results["rate"] = await rate(setup, swarm, args.rate_posts, args.rate)
    await swarm.close()
    results["post_errors"] = sum(p.errors for p in setup.publishers)
    for publisher in setup.publishers:
        await publisher.client.aclose()
    return results


async def run(args: argparse.Namespace, workdir: Path,
              databases: dict[str, str | None]) -> dict[str, Any]:
    sources = tuple(f"127.0.0.{i}" for i in range(1, args.sources + 1))
    results: dict[str, Any] = {"settings": vars(args).copy()}
    core = args.server_core

    # One process, the in-process broker.
    env = bulletin_env(workdir, databases["one"])
    token = prepare(env)
    port = free_port()
    one = Setup("one process", [serve(env, port, core)], [port],
                [BulletinPublisher(port, token)])
    try:
        results["one"] = await measure(one, args, sources)
    finally:
        one.stop()

    # Two processes and Redis.
    redis_port = free_port()
    redis = start_redis(workdir, redis_port, core)
    env = bulletin_env(workdir, databases["two"])
    env["BULLETIN_BROKER_URL"] = f"redis://127.0.0.1:{redis_port}/0?prefix=bench:"
    token = prepare(env)
    ports = [free_port(), free_port()]
    two = Setup("two processes + Redis", [serve(env, p, core) for p in ports], ports,
                [BulletinPublisher(p, token) for p in ports], redis=redis)
    try:
        results["two"] = await measure(two, args, sources)
    finally:
        two.stop()
    shutil.rmtree(workdir, ignore_errors=True)
    return results


def summary(results: dict[str, Any]) -> str:
    lines = ["| | one process | two processes + Redis | two ÷ one |",
             "| --- | ---: | ---: | ---: |"]

    def row(label: str, phase: str, key: str, ratio: bool = True) -> None:
        a, b = results["one"][phase][key], results["two"][phase][key]
        lines.append(f"| {label} | {a} | {b} | {f'{b / a:.2f}' if ratio and a else ''} |")

    n = results["one"]["burst"]["subscribers"]
    row(f"burst {n}: deliveries/s", "burst", "deliveries_per_second")
    for key in ("lost", "duplicates", "out_of_order"):
        row(f"burst {n}: {key}", "burst", key, False)
    row(f"burst {n}: Bulletin CPU %", "burst", "server_cpu_pct", False)
    row(f"burst {n}: Bulletin CPU µs per delivery", "burst", "server_cpu_us_per_delivery")
    row(f"burst {n}: Redis CPU %", "burst", "redis_cpu_pct", False)
    row(f"burst {n}: generator CPU %", "burst", "generator_cpu_pct", False)
    row(f"burst {n}: generator unread bytes/conn", "burst", "generator_unread_bytes", False)
    row(f"rate {n}: p50 ms", "rate", "p50_ms")
    row(f"rate {n}: p99 ms", "rate", "p99_ms")
    row(f"rate {n}: max ms", "rate", "max_ms")
    for key in ("lost", "duplicates", "out_of_order"):
        row(f"rate {n}: {key}", "rate", key, False)
    row(f"rate {n}: Bulletin CPU %", "rate", "server_cpu_pct", False)
    row(f"rate {n}: Redis CPU %", "rate", "redis_cpu_pct", False)
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="Bulletin fan-out across processes")
    parser.add_argument("--subscribers", type=int, default=5_000)
    parser.add_argument("--burst-posts", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, default=10.0, help="posts per second")
    parser.add_argument("--rate-posts", type=int, default=200)
    parser.add_argument("--frame-bytes", type=int, default=500)
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--generator-core", type=int, default=1)
    parser.add_argument("--no-pin", action="store_true", help="do not pin to cores")
    parser.add_argument("--sources", type=int, default=4)
    parser.add_argument("--database-url",
                        help="a PostgreSQL URL: each configuration gets a fresh database "
                             "named after it (default: SQLite files)")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--quick", action="store_true", help="100 subscribers, 20 posts")
    args = parser.parse_args()
    if args.quick:
        args.subscribers, args.burst_posts, args.rate_posts, args.rate = 100, 20, 20, 20.0
    if args.no_pin or (os.cpu_count() or 1) < 2:
        args.server_core = args.generator_core = None
    if args.generator_core is not None:
        os.sched_setaffinity(0, {args.generator_core})
    raise_fd_limit()

    import uvloop

    workdir = Path(tempfile.mkdtemp(prefix="bulletin-scaleout-"))
    databases = {name: fresh_database(args.database_url, workdir, name)
                 for name in ("one", "two")}
    results = uvloop.run(run(args, workdir, databases))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    print(summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
