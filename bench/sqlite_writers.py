"""Concurrent editors on the default SQLite file: write latency and refusals.

Starts `bulletin serve` on a fresh SQLite file (from this checkout, or ``--root`` another
one, to compare two versions in one run) and has ``--writers`` editors post at once,
``--posts`` each, through the API. Prints the write latency percentiles, the non-201
answers by code, and whether the stream's log is exactly 1..N.

    .venv/bin/python bench/sqlite_writers.py
    .venv/bin/python bench/sqlite_writers.py --root /tmp/bulletin-main   # another version
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import bulletin_env, free_port, wait_port

ROOT = Path(__file__).resolve().parent.parent


def start(root: Path, workdir: Path, port: int) -> tuple[subprocess.Popen[bytes], list[str]]:
    env = bulletin_env(workdir, None)
    cli = [sys.executable, "-m", "bulletin.cli"]
    subprocess.run([*cli, "db", "upgrade"], env=env, cwd=root, check=True,
                   capture_output=True)
    tokens = []
    for n in range(args.writers):
        subprocess.run([*cli, "editor", "create", f"writer{n}", "--password-stdin"], env=env,
                       cwd=root, check=True, input=b"writer-password-123\n",
                       capture_output=True)
        tokens.append(subprocess.run([*cli, "token", "create", f"writer{n}"], env=env,
                                     cwd=root, check=True, capture_output=True)
                      .stdout.decode().split()[-1])
    popen = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env, cwd=root,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, popen)
    return popen, tokens


async def run() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bulletin-sqlite-"))
    port = free_port()
    popen, tokens = start(args.root, workdir, port)
    base = f"http://127.0.0.1:{port}"
    latencies: list[float] = []
    codes: Counter[str] = Counter()
    try:
        clients = [httpx.AsyncClient(base_url=base, timeout=60,
                                     headers={"Authorization": f"Bearer {t}"}) for t in tokens]
        r = await clients[0].post("/api/streams", json={"slug": "desk", "title": "Desk",
                                                        "status": "live"})
        assert r.status_code == 201, r.text

        async def writer(client: httpx.AsyncClient, n: int) -> None:
            for i in range(args.posts):
                started = time.perf_counter()
                r = await client.post("/api/streams/desk/posts",
                                      json={"body": f"Update {n}-{i} from the desk"})
                latencies.append(time.perf_counter() - started)
                if r.status_code != 201:
                    codes[f"{r.status_code} {r.json()['error']['code']}"] += 1

        started = time.perf_counter()
        await asyncio.gather(*(writer(c, n) for n, c in enumerate(clients)))
        wall = time.perf_counter() - started
        log = (await clients[0].get("/api/streams/desk/events?since=0&limit=500")).json()
        seqs = [e["seq"] for e in log["events"]]
        while log["has_more"]:
            log = (await clients[0].get(f"/api/streams/desk/events?since={seqs[-1]}"
                                        "&limit=500")).json()
            seqs += [e["seq"] for e in log["events"]]
        for client in clients:
            await client.aclose()
    finally:
        popen.terminate()
        popen.wait(15)
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000, 1)

    accepted = args.writers * args.posts - sum(codes.values())
    print(f"{args.writers} writers x {args.posts} posts on SQLite ({args.root}): "
          f"{accepted} accepted in {wall:.1f} s ({accepted / wall:.0f}/s); "
          f"p50 {pct(0.5)} ms, p99 {pct(0.99)} ms, max {pct(1.0)} ms; "
          f"refused {dict(codes) or 0}; log gapless: {seqs == list(range(1, len(seqs) + 1))}")


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--writers", type=int, default=5)
parser.add_argument("--posts", type=int, default=200)
parser.add_argument("--root", type=Path, default=ROOT,
                    help="the checkout whose server to run (default: this one)")
args = parser.parse_args()

if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    asyncio.run(run())
