"""The fan-out benchmark: Bulletin against a ``websockets.broadcast()`` baseline.

Starts both servers pinned to one core and drives them from this process pinned to the
other, with the same subscribers and the same payload bytes, in one run:

- hold:  N subscribers on one stream, idle memory per connection, then a few posts:
         every connection must get every post exactly once;
- burst: M subscribers, P posts as fast as they are accepted: deliveries per second;
- rate:  M subscribers, posts at a steady rate: p50/p99/max delivery latency.

Bulletin's posts go through its real HTTP API (a token, the write path, the database,
the broker, the hub); the baseline's are handed to it over a WebSocket. Latency is from
just before the post is sent to the frame's arrival at each subscriber.

    .venv/bin/python bench/run.py                 # the figures in docs/benchmarks.md
    .venv/bin/python bench/run.py --quick         # a small smoke run (seconds)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import Phase, Swarm, raise_fd_limit

ROOT = Path(__file__).resolve().parent.parent
STREAM = "bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
FILLER = ("Polls have closed in the northern districts and the first boxes are on their "
          "way to the count. Turnout looked higher than last time in most stations. ")


# --- the servers ------------------------------------------------------------------------

def process_cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Proc:
    """A server process: its CPU time and resident memory, read from /proc."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self.pid = popen.pid

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)

    def children_cpu_seconds(self) -> float:
        """CPU seconds of the process's live descendants (the photo workers, say)."""
        total, stack = 0.0, [self.pid]
        while stack:
            pid = stack.pop()
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                try:
                    found = [int(child) for child in task.read_text().split()]
                except FileNotFoundError:
                    continue
                for child in found:
                    try:
                        total += process_cpu_seconds(child)
                    except FileNotFoundError:
                        continue
                    stack.append(child)
        return total

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def unread_bytes(port: int) -> int:
    """Bytes received but not yet read, summed over local sockets connected to ``port``."""
    total = 0
    suffix = f":{port:04X}"
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[2].endswith(suffix) and fields[3] == "01":  # ESTABLISHED, to port
                total += int(fields[4].split(":")[1], 16)
    return total


def pinned(core: int | None) -> Callable[[], None]:
    def setup() -> None:
        if core is not None:
            os.sched_setaffinity(0, {core})
        raise_fd_limit()
    return setup


def wait_port(port: int, proc: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {seconds} s")


def bulletin_env(workdir: Path, database_url: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "BULLETIN_DATABASE_URL": database_url or f"sqlite+aiosqlite:///{workdir}/bench.db",
        "BULLETIN_SECRET_KEY": "bench-" + "k" * 40,
        "BULLETIN_WRITE_RATE": "100000",
        "BULLETIN_WRITE_BURST": "100000",
        "BULLETIN_LOG_LEVEL": "warning",
        # The generator's few local addresses stand for thousands of readers' addresses:
        # the per-address frame limit would otherwise count them all as one client.
        "BULLETIN_ADDRESS_FRAME_BURST": "1000000",
    })
    return env


def start_bulletin(workdir: Path, port: int, core: int | None,
                   database_url: str | None) -> tuple[Proc, str]:
    """Migrate, make an editor and a token, and serve; returns the process and the token."""
    env = bulletin_env(workdir, database_url)
    cli = [sys.executable, "-m", "bulletin.cli"]
    subprocess.run([*cli, "db", "upgrade"], env=env, cwd=ROOT, check=True,
                   capture_output=True)
    username = f"bench{os.getpid()}"
    subprocess.run([*cli, "editor", "create", username, "--admin", "--password-stdin"],
                   env=env, cwd=ROOT, check=True, input=b"bench-password-123\n",
                   capture_output=True)
    token = subprocess.run([*cli, "token", "create", username, "--name", "bench"], env=env,
                           cwd=ROOT, check=True, capture_output=True).stdout.decode().split()[-1]
    popen = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env, cwd=ROOT,
                             preexec_fn=pinned(core), stdout=subprocess.DEVNULL)
    wait_port(port, popen)
    return Proc(popen), token


def start_baseline(port: int, core: int | None) -> Proc:
    popen = subprocess.Popen([sys.executable, str(ROOT / "bench" / "baseline.py"),
                              "--port", str(port)], preexec_fn=pinned(core),
                             stdout=subprocess.DEVNULL)
    wait_port(port, popen)
    return Proc(popen)


# --- publishing -------------------------------------------------------------------------

def body(index: int, filler: int) -> str:
    text = (FILLER * (filler // len(FILLER) + 1))[:filler]
    return f"bench-{index}- {text}"


@dataclass
class Target:
    """One server under test, and how to publish message ``index`` to it."""

    name: str
    port: int
    proc: Proc
    publish: Callable[[int, Phase], Awaitable[None]] = field(repr=False)


class BulletinPublisher:
    def __init__(self, port: int, token: str) -> None:
        self.client = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=60,
            headers={"Authorization": f"Bearer {token}"},
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=16))
        self.filler = 0
        self.errors = 0

    async def create_stream(self) -> None:
        r = await self.client.post("/api/streams", json={
            "slug": STREAM, "title": "Benchmark", "status": "live"})
        if r.status_code not in (201, 409):
            raise RuntimeError(f"cannot create the stream: {r.status_code} {r.text}")

    async def publish(self, index: int, phase: Phase) -> None:
        text = body(index, self.filler)
        phase.publishing(index)
        r = await self.client.post(f"/api/streams/{STREAM}/posts", json={"body": text})
        if r.status_code != 201:
            self.errors += 1
            print(f"post {index}: {r.status_code} {r.text}", file=sys.stderr)


class BaselinePublisher:
    def __init__(self, port: int, template: bytes) -> None:
        self.url = f"ws://127.0.0.1:{port}/publish"
        self.template = template.decode()
        self.ws: ClientConnection | None = None

    async def open(self) -> None:
        self.ws = await connect(self.url, compression=None, max_queue=None)

    async def publish(self, index: int, phase: Phase) -> None:
        # The same bytes as Bulletin's frame for this index: only the marker and seq differ.
        message = (self.template.replace("bench-0-", f"bench-{index}-", 1)
                   .replace('"seq":0,', f'"seq":{index + 1},', 1))
        phase.publishing(index)
        assert self.ws is not None
        await self.ws.send(message)


async def calibrate(publisher: BulletinPublisher, port: int, frame_bytes: int) -> bytes:
    """Choose the filler so that Bulletin's frames are about ``frame_bytes``; returns a
    frame of that size (marker index 0, seq 0) as the baseline's template."""
    swarm = Swarm("127.0.0.1", port)
    await swarm.connect(1, STREAM)
    sample = b""
    for _ in range(2):
        phase = swarm.start_phase(1)
        swarm.keep_sample = True
        await publisher.publish(0, phase)
        await swarm.wait_delivered(1)
        sample = swarm.sample
        if publisher.filler == 0:
            # Body text appears twice in a post event (Markdown and HTML).
            publisher.filler = max(0, (frame_bytes - len(sample)) // 2)
    await swarm.close()
    text = sample.decode()
    seq = json.loads(text)["seq"]
    return text.replace(f'"seq":{seq},', '"seq":0,', 1).encode()


# --- measuring --------------------------------------------------------------------------

@dataclass
class Window:
    wall: float = 0.0
    server_cpu: float = 0.0
    generator_cpu: float = 0.0

    def figures(self) -> dict[str, float]:
        wall = self.wall or 1e-9
        return {"server_cpu_pct": round(100 * self.server_cpu / wall, 1),
                "generator_cpu_pct": round(100 * self.generator_cpu / wall, 1)}


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def measured(proc: Proc) -> Iterator[Window]:
    window = Window()
    wall, server, gen = time.perf_counter(), proc.cpu_seconds(), own_cpu()
    try:
        yield window
    finally:
        window.wall = time.perf_counter() - wall
        window.server_cpu = proc.cpu_seconds() - server
        window.generator_cpu = own_cpu() - gen


async def scenario_hold(target: Target, sources: tuple[str, ...], n: int, posts: int,
                        seconds: float) -> dict[str, Any]:
    swarm = Swarm("127.0.0.1", target.port, sources=sources)
    rss_before = target.proc.rss_kb()
    connect_seconds = await swarm.connect(n, STREAM)
    await asyncio.sleep(2)
    rss_after = target.proc.rss_kb()
    phase = swarm.start_phase(posts)
    started = time.perf_counter()
    with measured(target.proc) as window:
        for i in range(posts):
            await asyncio.sleep(max(0.0, started + i * seconds / max(posts, 1)
                                    - time.perf_counter()))
            await target.publish(i, phase)
        await swarm.wait_delivered(posts * n, idle=10)
        await asyncio.sleep(max(0.0, started + seconds - time.perf_counter()))
    result = swarm.report(phase)
    result.update({
        "connect_seconds": round(connect_seconds, 2),
        "rss_before_mb": round(rss_before / 1024, 1),
        "rss_after_mb": round(rss_after / 1024, 1),
        "kb_per_connection": round((rss_after - rss_before) / n, 1),
        "held_seconds": round(window.wall, 1),
        "unexpected_frames": len(swarm.unexpected_frames()),
        **window.figures(),
    })
    await swarm.close()
    return result


async def scenario_burst(target: Target, swarm: Swarm, posts: int,
                         concurrency: int) -> dict[str, Any]:
    phase = swarm.start_phase(posts)
    indexes = iter(range(posts))

    async def worker() -> None:
        for i in indexes:
            await target.publish(i, phase)

    backlog: list[int] = []

    async def sample() -> None:
        while True:
            await asyncio.sleep(0.25)
            backlog.append(unread_bytes(target.port))

    sampler = asyncio.create_task(sample())
    with measured(target.proc) as window:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        await swarm.wait_delivered(posts * len(swarm.subscribers))
    sampler.cancel()
    result = swarm.report(phase)
    # Bytes that had reached the generator's sockets but that it had not read yet, per
    # connection, on average over the burst: near zero means it kept up with the server.
    result["generator_unread_bytes"] = (
        round(sum(backlog) / len(backlog) / len(swarm.subscribers)) if backlog else 0)
    result["deliveries_per_second"] = (round(result["delivered"] / result["seconds"])
                                       if result["seconds"] else 0)
    # What a delivery costs the server, idle time aside (Bulletin's includes its API,
    # database and broker work for the posts).
    result["server_cpu_us_per_delivery"] = (
        round(window.server_cpu / result["delivered"] * 1e6, 2) if result["delivered"] else 0)
    result.update(window.figures())
    return result


async def scenario_rate(target: Target, swarm: Swarm, posts: int, rate: float) -> dict[str, Any]:
    phase = swarm.start_phase(posts)
    started = time.perf_counter()
    sends: list[asyncio.Task[None]] = []
    with measured(target.proc) as window:
        for i in range(posts):
            await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            sends.append(asyncio.create_task(target.publish(i, phase)))
        await asyncio.gather(*sends)
        await swarm.wait_delivered(posts * len(swarm.subscribers))
    result = swarm.report(phase)
    result.update(window.figures())
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bulletin-bench-"))
    bulletin_port, baseline_port = free_port(), free_port()
    bulletin_proc, token = start_bulletin(workdir, bulletin_port, args.server_core,
                                          args.database_url)
    baseline_proc = start_baseline(baseline_port, args.server_core)
    results: dict[str, Any] = {"settings": vars(args).copy()}
    # Several local addresses, so that 10,000 sockets and their TIME_WAIT leftovers do
    # not exhaust one address's ephemeral ports.
    sources = tuple(f"127.0.0.{i}" for i in range(1, args.sources + 1))
    try:
        bulletin = BulletinPublisher(bulletin_port, token)
        await bulletin.create_stream()
        template = await calibrate(bulletin, bulletin_port, args.frame_bytes)
        baseline = BaselinePublisher(baseline_port, template)
        await baseline.open()
        results["frame_bytes"] = len(template)
        targets = [Target("baseline", baseline_port, baseline_proc, baseline.publish),
                   Target("bulletin", bulletin_port, bulletin_proc, bulletin.publish)]

        for target in targets if "hold" in args.scenarios else ():
            log(f"hold: {args.hold} subscribers on {target.name}")
            results.setdefault("hold", {})[target.name] = await scenario_hold(
                target, sources, args.hold, args.hold_posts, args.hold_seconds)
        for target in targets if {"burst", "rate"} & set(args.scenarios) else ():
            swarm = Swarm("127.0.0.1", target.port, sources=sources)
            await swarm.connect(args.subscribers, STREAM)
            if "burst" in args.scenarios:
                log(f"burst: {args.subscribers} subscribers x {args.burst_posts} "
                    f"on {target.name}")
                results.setdefault("burst", {})[target.name] = await scenario_burst(
                    target, swarm, args.burst_posts, args.concurrency)
                await asyncio.sleep(1)
            if "rate" in args.scenarios:
                log(f"rate: {args.subscribers} subscribers, {args.rate}/s on {target.name}")
                results.setdefault("rate", {})[target.name] = await scenario_rate(
                    target, swarm, args.rate_posts, args.rate)
            await swarm.close()
        results["post_errors"] = bulletin.errors
        await bulletin.client.aclose()
    finally:
        bulletin_proc.stop()
        baseline_proc.stop()
    return results


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def summary(results: dict[str, Any]) -> str:
    hold, burst, rate = (results.get(name) for name in ("hold", "burst", "rate"))
    lines = [f"frame: {results['frame_bytes']} bytes; cores: server "
             f"{results['settings']['server_core']}, generator "
             f"{results['settings']['generator_core']}", ""]
    lines.append("| | baseline | bulletin | bulletin / baseline |")
    lines.append("| --- | ---: | ---: | ---: |")

    def row(label: str, section: dict[str, Any], key: str, ratio: bool = True) -> None:
        a, b = section["baseline"][key], section["bulletin"][key]
        r = f"{b / a:.2f}" if ratio and a else ""
        lines.append(f"| {label} | {a} | {b} | {r} |")

    if hold:
        n = hold["bulletin"]["subscribers"]
        row(f"hold {n}: lost", hold, "lost", False)
        row(f"hold {n}: duplicated", hold, "duplicates", False)
        row(f"hold {n}: out of order", hold, "out_of_order", False)
        row(f"hold {n}: idle KB per connection", hold, "kb_per_connection")
        row(f"hold {n}: connect seconds", hold, "connect_seconds")
    if burst:
        m = burst["bulletin"]["subscribers"]
        row(f"burst {m}: deliveries/s", burst, "deliveries_per_second")
        row(f"burst {m}: lost", burst, "lost", False)
        row(f"burst {m}: duplicated", burst, "duplicates", False)
        row(f"burst {m}: out of order", burst, "out_of_order", False)
        row(f"burst {m}: server CPU %", burst, "server_cpu_pct", False)
        row(f"burst {m}: server CPU µs per delivery", burst, "server_cpu_us_per_delivery")
        row(f"burst {m}: generator CPU %", burst, "generator_cpu_pct", False)
        row(f"burst {m}: generator unread bytes/conn", burst, "generator_unread_bytes", False)
    if rate:
        m = rate["bulletin"]["subscribers"]
        row(f"rate {m}: p50 ms", rate, "p50_ms")
        row(f"rate {m}: p99 ms", rate, "p99_ms")
        row(f"rate {m}: max ms", rate, "max_ms")
        row(f"rate {m}: lost", rate, "lost", False)
        row(f"rate {m}: duplicated", rate, "duplicates", False)
        row(f"rate {m}: out of order", rate, "out_of_order", False)
        row(f"rate {m}: server CPU %", rate, "server_cpu_pct", False)
        row(f"rate {m}: generator CPU %", rate, "generator_cpu_pct", False)
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="Bulletin fan-out benchmark")
    parser.add_argument("--hold", type=int, default=10_000, help="subscribers held")
    parser.add_argument("--hold-posts", type=int, default=20)
    parser.add_argument("--hold-seconds", type=float, default=30.0)
    parser.add_argument("--subscribers", type=int, default=5_000,
                        help="subscribers for the burst and rate scenarios")
    parser.add_argument("--burst-posts", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8,
                        help="posts in flight during the burst")
    parser.add_argument("--rate", type=float, default=10.0, help="posts per second")
    parser.add_argument("--rate-posts", type=int, default=200)
    parser.add_argument("--frame-bytes", type=int, default=500)
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--generator-core", type=int, default=1)
    parser.add_argument("--no-pin", action="store_true", help="do not pin to cores")
    parser.add_argument("--database-url", help="Bulletin's database (default: SQLite file)")
    parser.add_argument("--sources", type=int, default=4,
                        help="local addresses 127.0.0.N to connect from (ports run out)")
    parser.add_argument("--scenarios", type=lambda v: v.split(","),
                        default=["hold", "burst", "rate"],
                        help="comma-separated subset of hold,burst,rate")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--quick", action="store_true",
                        help="a small smoke run: 200 held, 100 subscribers")
    args = parser.parse_args()
    if args.quick:
        args.hold, args.hold_posts, args.hold_seconds = 200, 5, 2.0
        args.subscribers, args.burst_posts, args.rate_posts, args.rate = 100, 20, 20, 20.0
    if args.no_pin or (os.cpu_count() or 1) < 2:
        args.server_core = args.generator_core = None
    if args.generator_core is not None:
        os.sched_setaffinity(0, {args.generator_core})
    raise_fd_limit()

    import uvloop

    results = uvloop.run(run(args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    print(summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
