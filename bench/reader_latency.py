"""From the editor's POST to the post on a reader's screen, in a real browser.

    .venv/bin/python bench/reader_latency.py [--posts 100] [--readers 5] [--loads 20]
        [--baseline DIR]

Starts `bulletin serve` on a fresh SQLite database, opens ``--readers`` reader pages in
Debian's Chromium, posts ``--posts`` updates through the API one after another, and for
each post measures the time from just before the POST was sent to the moment the
reader page's script had put the post in the page (a MutationObserver stamps it with
the wall clock, which the page and this script share on one machine). Also prints the
page weight: the HTML and every script and style it loads, raw and gzipped, and the
page's load time: ``--loads`` cold loads (each in a new browser context, so nothing is
cached), timed from navigation start to DOMContentLoaded, to the load event, and to the
live connection (``main[data-connection='live']``). With ``--baseline`` (another
checkout, for example ``git worktree add /tmp/base <commit>``) that checkout's server runs
too, and its page weight and load times are measured alongside, the cold loads taking
turns between the two servers.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("BULLETIN_CHROMIUM", "/usr/bin/chromium")

OBSERVER = """() => {
    window.__seen = {};
    new MutationObserver((records) => {
        const now = performance.timeOrigin + performance.now();
        for (const record of records) for (const node of record.addedNodes) {
            if (node.nodeType === 1 && node.matches("article.post")) {
                window.__seen[node.dataset.id] ??= now;
            }
        }
    }).observe(document.querySelector("#feed"), {childList: true});
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def page_weight(base: str, slug: str) -> list[tuple[str, int, int]]:
    """(name, bytes, gzipped bytes) of the page and each file it loads."""
    async with httpx.AsyncClient(base_url=base) as client:
        html = (await client.get(f"/live/{slug}")).content
        rows = [("reader page HTML", len(html), len(gzip.compress(html)))]
        names = re.findall(rb'/static/[0-9a-f]+/([\w.-]+)', html)
        seen: set[bytes] = set()
        queue = list(names)
        while queue:
            name = queue.pop(0)
            if name in seen:
                continue
            seen.add(name)
            match = re.search(rb'/static/([0-9a-f]+)/', html)
            assert match is not None
            body = (await client.get(f"/static/{match.group(1).decode()}/{name.decode()}")).content
            rows.append((name.decode(), len(body), len(gzip.compress(body))))
            queue += re.findall(rb'from\s*"\./([\w.-]+)"', body)
        return rows


TIMINGS = """() => {
    const [nav] = performance.getEntriesByType("navigation");
    return {dom: nav.domContentLoadedEventEnd, load: nav.loadEventEnd,
            live: window.__live - performance.timeOrigin};
}"""
STAMP_LIVE = """() => {
    const stamp = () => { window.__live ??= performance.timeOrigin + performance.now(); };
    const watch = () => {
        const main = document.querySelector("main");
        if (main?.dataset.connection === "live") return stamp();
        new MutationObserver(() => { if (main.dataset.connection === "live") stamp(); })
            .observe(main, {attributes: true, attributeFilter: ["data-connection"]});
    };
    if (document.readyState === "loading") {
        document.addEventListener("readystatechange", watch, {once: true});
    } else {
        watch();
    }
}"""


async def load_times(bases: list[str], slug: str, loads: int) -> list[dict[str, list[float]]]:
    """Milliseconds from navigation start to DOMContentLoaded, load and live, per cold load
    of each server's page. The servers take turns, load by load (the first one alternates),
    so that a busy moment of the machine falls on all of them alike."""
    times: list[dict[str, list[float]]] = [{"dom": [], "load": [], "live": []} for _ in bases]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM)
        for n in range(loads):
            order = list(range(len(bases)))
            if n % 2:
                order.reverse()
            for i in order:
                context = await browser.new_context()
                await context.add_init_script(f"({STAMP_LIVE})()")
                page = await context.new_page()
                await page.goto(f"{bases[i]}/live/{slug}", wait_until="load")
                await page.wait_for_function("() => window.__live !== undefined")
                for key, value in (await page.evaluate(TIMINGS)).items():
                    times[i][key].append(value)
                await context.close()
        await browser.close()
    return times


async def measure(base: str, token: str, slug: str, posts: int, readers: int) -> list[float]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM)
        pages = []
        for _ in range(readers):
            page = await (await browser.new_context()).new_page()
            await page.goto(f"{base}/live/{slug}")
            await page.wait_for_selector("main[data-connection='live']")
            await page.evaluate(OBSERVER)
            pages.append(page)
        sent: dict[str, float] = {}
        async with httpx.AsyncClient(base_url=base,
                                     headers={"Authorization": f"Bearer {token}"}) as api:
            for i in range(posts):
                start = time.time() * 1000
                r = await api.post(f"/api/streams/{slug}/posts", json={"body": f"Update {i}"})
                r.raise_for_status()
                sent[str(r.json()["id"])] = start
                await asyncio.sleep(0.05)
        delays: list[float] = []
        for page in pages:
            await page.wait_for_function(
                f"() => Object.keys(window.__seen).length >= {posts}", timeout=60_000)
            seen: dict[str, float] = await page.evaluate("() => window.__seen")
            delays += [seen[post_id] - start for post_id, start in sent.items()]
        await browser.close()
        return delays


class Server:
    """``bulletin serve`` from a source tree, on a fresh SQLite database, with a live stream
    and an API token."""

    def __init__(self, root: Path, tmp: str) -> None:
        self.root = root
        # A checkout from before the package was named bulletin runs as `server`.
        legacy = (root / "server" / "cli.py").exists() and not (root / "server" / "web").exists()
        path = str(root)
        if not legacy and root != ROOT:
            # Another checkout of this layout: its server/ folder, imported as bulletin.
            link = Path(tmp) / "path"
            link.mkdir()
            (link / "bulletin").symlink_to(root / "server")
            path = str(link)
        self.module = "server.cli" if legacy else "bulletin.cli"
        self.env = {**os.environ, "PYTHONPATH": path, "BULLETIN_LOG_LEVEL": "warning",
                    "BULLETIN_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/bench.db",
                    "BULLETIN_SECRET_KEY_FILE": f"{tmp}/secret",
                    "BULLETIN_WRITE_RATE": "1000", "BULLETIN_WRITE_BURST": "1000"}
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.tmp = tmp
        self.process: subprocess.Popen[bytes] | None = None
        self.token = ""

    def cli(self, args: list[str], stdin: str | None = None) -> str:
        return subprocess.run([sys.executable, "-m", self.module, *args], env=self.env,
                              input=stdin, capture_output=True, text=True, check=True,
                              cwd=self.tmp).stdout

    def start(self) -> None:
        self.cli(["editor", "create", "bench", "--password-stdin"], "a long bench password\n")
        self.token = self.cli(["token", "create", "bench"]).strip().splitlines()[-1]
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, "serve", "--port", str(self.port)],
            env=self.env, cwd=self.tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                httpx.get(f"{self.base}/healthz").raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        httpx.post(f"{self.base}/api/streams", headers={"Authorization": f"Bearer {self.token}"},
                   json={"slug": "bench", "title": "Bench", "status": "live"}).raise_for_status()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=100)
    parser.add_argument("--readers", type=int, default=5)
    parser.add_argument("--loads", type=int, default=20)
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another checkout (e.g. `git worktree add /tmp/base <commit>`) "
                             "whose page weight and load times are measured alongside")
    args = parser.parse_args()
    roots = [ROOT] + ([args.baseline.resolve()] if args.baseline else [])
    with tempfile.TemporaryDirectory() as tmp:
        servers = []
        for n, root in enumerate(roots):
            os.mkdir(f"{tmp}/{n}")
            servers.append(Server(root, f"{tmp}/{n}"))
        try:
            for server in servers:
                server.start()
            weights = [asyncio.run(page_weight(server.base, "bench")) for server in servers]
            loads = asyncio.run(load_times([server.base for server in servers], "bench",
                                           args.loads))
            this = servers[0]
            delays = sorted(asyncio.run(measure(this.base, this.token, "bench", args.posts,
                                                args.readers)))
        finally:
            for server in servers:
                server.stop()
    print(f"{args.posts} posts to {args.readers} reader pages in Chromium: "
          f"{len(delays)} arrivals")
    print(f"  POST sent -> post in the page: p50 {statistics.median(delays):.1f} ms, "
          f"p99 {delays[int(len(delays) * 0.99) - 1]:.1f} ms, max {delays[-1]:.1f} ms")
    for server, weight, load in zip(servers, weights, loads, strict=True):
        name = "this checkout" if server.root == ROOT else f"baseline {server.root}"
        print(f"{name}: page weight (bytes, gzipped):")
        for file, size, packed in weight:
            print(f"  {file:<20} {size:>7,} {packed:>7,}")
        print(f"  {'total':<20} {sum(w[1] for w in weight):>7,} {sum(w[2] for w in weight):>7,}")
        print(f"{name}: page load, {args.loads} cold loads (ms from navigation start, "
              "median / p90 / max):")
        for key, label in (("dom", "DOMContentLoaded"), ("load", "load event"),
                           ("live", "live connection")):
            values = sorted(load[key])
            p90 = values[max(0, int(len(values) * 0.9) - 1)]
            print(f"  {label:<20} {statistics.median(values):>7.1f} {p90:>7.1f} "
                  f"{values[-1]:>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
