"""The burst benchmark with and without hostile clients attacking the same server.

Bulletin runs pinned to one core as in ``run.py``; subscribers connect from the other,
and the burst (posts as fast as they are taken, every delivery counted) runs in rounds:
quiet, then with ``attacks.py`` throwing frame floods, ping floods from a client that never
reads, endless empty fragments and idle half-requests at the server for the whole burst.
Each round also times another client's ``/healthz`` and reads the server's memory, so the
cost of the attacks — and of the limits that cut them off — shows on the burst figure.

    .venv/bin/python bench/floods.py                  # the figures in docs/benchmarks.md
    .venv/bin/python bench/floods.py --quick          # a smoke run
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

HERE = Path(__file__).resolve().parent


async def probe(base: str, stop: asyncio.Event, waits: list[float]) -> None:
    """Another client's /healthz, every 50 ms, until ``stop``."""
    async with httpx.AsyncClient(timeout=30) as client:
        while not stop.is_set():
            started = time.perf_counter()
            await client.get(f"{base}/healthz")
            waits.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)


async def one_round(target: Target, swarm: Swarm, args: argparse.Namespace,
                    attacked: bool) -> dict[str, Any]:
    attackers = None
    if attacked:
        attackers = await asyncio.create_subprocess_exec(
            sys.executable, str(HERE / "attacks.py"), "--port", str(target.port),
            "--stream", STREAM, "--seconds", str(args.attack_seconds),
            "--kinds", ",".join(args.kinds), stdout=asyncio.subprocess.PIPE,
            # Beside the generator on its core, but yielding to it: the generator must
            # keep up with the server for the burst figure to measure the server.
            preexec_fn=lambda: os.nice(19))
        await asyncio.sleep(1)  # the attacks are under way before the burst starts
    rss_before = target.proc.rss_kb()
    stop, waits = asyncio.Event(), []
    prober = asyncio.create_task(probe(f"http://127.0.0.1:{target.port}", stop, waits))
    result = await scenario_burst(target, swarm, args.burst_posts, args.concurrency)
    stop.set()
    await prober
    result["rss_growth_mb"] = round((target.proc.rss_kb() - rss_before) / 1024, 1)
    result["probe_p99_ms"] = round(sorted(waits)[int(len(waits) * 0.99) - 1] * 1000, 1) \
        if waits else None
    result["probe_max_ms"] = round(max(waits) * 1000, 1) if waits else None
    if attackers is not None:
        out, _ = await asyncio.wait_for(attackers.communicate(), args.attack_seconds + 60)
        result["cut_off"] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bulletin-floods-"))
    port = free_port()
    proc, token = start_bulletin(workdir, port, args.server_core, None)
    rounds: list[dict[str, Any]] = []
    try:
        publisher = BulletinPublisher(port, token)
        await publisher.create_stream()
        await calibrate(publisher, port, args.frame_bytes)
        target = Target("bulletin", port, proc, publisher.publish)
        sources = tuple(f"127.0.0.{i}" for i in range(2, args.sources + 2))
        swarm = Swarm("127.0.0.1", port, sources=sources)
        await swarm.connect(args.subscribers, STREAM)
        for n in range(args.rounds):
            for attacked in (False, True):
                log(f"round {n + 1}: burst {'under attack' if attacked else 'quiet'}")
                result = await one_round(target, swarm, args, attacked)
                result["attacked"] = attacked
                rounds.append(result)
                await asyncio.sleep(2)
        await swarm.close()
        await publisher.client.aclose()
    finally:
        proc.stop()
    return {"settings": vars(args).copy(), "rounds": rounds}


def summary(results: dict[str, Any]) -> str:
    lines = ["| round | attacked | deliveries/s | server µs/delivery | lost | dup | out of "
             "order | probe p99 ms | probe max ms | RSS growth MB | attackers cut off |",
             "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for i, r in enumerate(results["rounds"]):
        lines.append(
            f"| {i // 2 + 1} | {'yes' if r['attacked'] else 'no'} | "
            f"{r['deliveries_per_second']} | {r['server_cpu_us_per_delivery']} | "
            f"{r['lost']} | {r['duplicates']} | "
            f"{r['out_of_order']} | {r['probe_p99_ms']} | {r['probe_max_ms']} | "
            f"{r['rss_growth_mb']} | {r.get('cut_off', '')} |")
    quiet = [r["deliveries_per_second"] for r in results["rounds"] if not r["attacked"]]
    loud = [r["deliveries_per_second"] for r in results["rounds"] if r["attacked"]]
    if quiet and loud:
        lines.append("")
        lines.append(f"median deliveries/s: quiet {statistics.median(quiet):.0f}, under "
                     f"attack {statistics.median(loud):.0f} "
                     f"({statistics.median(loud) / statistics.median(quiet):.2f} x)")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="the burst with and without attackers")
    parser.add_argument("--subscribers", type=int, default=2_000)
    parser.add_argument("--burst-posts", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--frame-bytes", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--attack-seconds", type=float, default=20.0,
                        help="how long each attacked round's attackers run")
    parser.add_argument("--kinds", type=lambda v: v.split(","),
                        default=["frames", "pings", "fragments", "idle"])
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--generator-core", type=int, default=1)
    parser.add_argument("--sources", type=int, default=4)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.subscribers, args.burst_posts, args.rounds, args.attack_seconds = 100, 20, 1, 5.0
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
