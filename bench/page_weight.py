"""What a reader downloads to open a live page with photos, in a real browser.

    .venv/bin/python bench/page_weight.py [--posts 20] [--photos 6] [--json out.json]

Starts `bulletin serve` on a fresh SQLite database (as bench/run.py does), and makes two
stories of ``--posts`` updates with the same text: one without photos, and one where
``--photos`` of the posts each carry a 12-megapixel camera photo (4000x3000, made like
bench/media_processing.py's) uploaded through the API. Then opens each story's reader
page in Debian's Chromium, cold (a new browser context each time, nothing cached), as a
laptop (1280x800, device pixel ratio 1) and as a phone (390x844, ratio 3), waits until
the network is idle (the first screen), scrolls to the end (photos load lazily) and
waits again. Prints the bytes the browser transferred, by kind (the page, scripts and
styles, photos), and the photos' widths the browser chose from their ``srcset``: the
figure to compare with a photo's own size (12 MP as a JPEG from a phone is 3 to 5 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import async_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
from media_processing import photo
from run import free_port, start_bulletin

CHROMIUM = os.environ.get("BULLETIN_CHROMIUM", "/usr/bin/chromium")
VIEWPORTS = {
    "laptop": {"viewport": {"width": 1280, "height": 800}, "device_scale_factor": 1},
    "phone": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3,
              "is_mobile": True, "has_touch": True},
}
TEXT = ("Council staff have started counting the postal votes in District {n}; the returning "
        "officer expects a declaration within the hour. Turnout there was {t}%, and both "
        "main candidates are at the count centre.")


async def seed(base: str, token: str, posts: int, photos: int, size: tuple[int, int],
               ) -> dict[str, Any]:
    """The two stories; returns their slugs and the uploaded photos' source sizes."""
    headers = {"Authorization": f"Bearer {token}"}
    sources: list[int] = []
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=300) as api:
        for slug in ("text-only", "with-photos"):
            r = await api.post("/api/streams", json={"slug": slug, "title": slug,
                                                     "status": "live"})
            r.raise_for_status()
        every = max(1, posts // max(photos, 1))
        for n in range(posts):
            body = TEXT.format(n=n + 1, t=40 + n % 20)
            (await api.post("/api/streams/text-only/posts", json={"body": body})
             ).raise_for_status()
            media = []
            if photos and n % every == 0 and len(sources) < photos:
                data = photo(*size)
                sources.append(len(data))
                up = await api.post("/api/media", files={"file": ("p.jpg", data, "image/jpeg")})
                up.raise_for_status()
                media = [{"id": up.json()["id"], "alt": f"The count in District {n + 1}"}]
            (await api.post("/api/streams/with-photos/posts",
                            json={"body": body, "media": media})).raise_for_status()
    return {"sources": sources}


def kind(url: str, resource: str) -> str:
    if "/media/" in url:
        return "photos"
    if resource == "document":
        return "page"
    if resource in ("script", "stylesheet"):
        return "scripts and styles"
    return "other"


async def weigh(browser: Any, base: str, slug: str, viewport: dict[str, Any]) -> dict[str, Any]:
    """One cold load: bytes by kind (headers and bodies as transferred), photo widths."""
    context = await browser.new_context(**viewport)
    page = await context.new_page()
    seen: list[tuple[str, str, Any]] = []
    page.on("requestfinished", lambda request: seen.append(
        (request.url, request.resource_type, request)))
    await page.goto(f"{base}/live/{slug}", wait_until="networkidle")
    await page.wait_for_timeout(300)
    first_screen = 0
    for _url, _resource, request in list(seen):
        sizes = await request.sizes()
        first_screen += sizes["responseBodySize"] + sizes["responseHeadersSize"]
    for _ in range(20):  # scroll to the end in steps: each photo loads as it nears view
        await page.mouse.wheel(0, 1500)
        await page.wait_for_timeout(100)
    await page.wait_for_load_state("networkidle")
    await page.wait_for_timeout(300)
    totals: Counter[str] = Counter()
    widths: Counter[str] = Counter()
    for url, resource, request in seen:
        sizes = await request.sizes()
        totals[kind(url, resource)] += sizes["responseBodySize"] + sizes["responseHeadersSize"]
        if "/media/" in url:
            widths[url.rsplit("-", 1)[1]] += 1
    await context.close()
    return {"bytes": dict(totals), "total": sum(totals.values()), "photo_files": dict(widths),
            "first_screen": first_screen}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc, token = start_bulletin(Path(tmp), port, None, None)
        base = f"http://127.0.0.1:{port}"
        try:
            size = (1600, 1200) if args.quick else (4000, 3000)
            info = await seed(base, token, args.posts, args.photos, size)
            results: dict[str, Any] = {"posts": args.posts, "photos": args.photos,
                                       "source_bytes": info["sources"], "loads": {}}
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM)
                for name, viewport in VIEWPORTS.items():
                    for slug in ("text-only", "with-photos"):
                        results["loads"][f"{name} {slug}"] = await weigh(
                            browser, base, slug, viewport)
                await browser.close()
        finally:
            proc.stop()
    return results


def summary(results: dict[str, Any]) -> str:
    sources = results["source_bytes"]
    lines = [f"{results['posts']} posts, {len(sources)} of them with a photo "
             f"(sources {sum(sources) / len(sources) / 1e6:.1f} MB each as JPEG)"
             if sources else f"{results['posts']} posts, no photos",
             f"{'load':<24}{'first screen':>13}{'page':>9}{'js+css':>9}{'photos':>10}"
             f"{'total':>10}  photo files (whole page)"]
    for name, load in results["loads"].items():
        b = load["bytes"]
        files = ", ".join(f"{n}x {w}" for w, n in sorted(load["photo_files"].items()))
        lines.append(f"{name:<24}{load['first_screen'] / 1e3:>12.1f}K"
                     f"{b.get('page', 0) / 1e3:>8.1f}K"
                     f"{b.get('scripts and styles', 0) / 1e3:>8.1f}K"
                     f"{b.get('photos', 0) / 1e3:>9.1f}K{load['total'] / 1e3:>9.1f}K  {files}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=20)
    parser.add_argument("--photos", type=int, default=6)
    parser.add_argument("--quick", action="store_true", help="small photos, for a smoke run")
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    print(summary(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
