"""Take the screenshots the README shows, from a real demo server in Chromium.

    .venv/bin/python docs/take_screenshots.py          # writes docs/screenshots/*.png

Needs Debian's Chromium (/usr/bin/chromium, or BULLETIN_CHROMIUM) and the playwright
package from the test extras.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("BULLETIN_CHROMIUM", "/usr/bin/chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_demo(workdir: Path, port: int) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """`bulletin serve --demo`, and what its banner says."""
    env = {**os.environ, "BULLETIN_LOG_LEVEL": "warning",
           "BULLETIN_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'demo.db'}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "bulletin.cli", "serve", "--demo", "--port", str(port)],
        cwd=workdir, env={**env, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    banner = ""
    deadline = time.monotonic() + 60
    while "(the password and token" not in banner:
        line = process.stdout.readline()
        if not line or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"the demo server did not start:\n{banner}")
        banner += line
    found = re.search(r"username (\S+)\s+password (\S+)", banner)
    slug = re.search(r"/live/([a-z0-9-]+)", banner)
    token = re.search(r"API token:\s+(\S+)", banner)
    assert found and slug and token, banner
    return process, {"username": found.group(1), "password": found.group(2),
                     "slug": slug.group(1), "token": token.group(1)}


async def shoot(base: str, demo: dict[str, str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    slug = demo["slug"]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM)

        reader = await browser.new_page(viewport={"width": 1100, "height": 900},
                                        locale="en-GB", timezone_id="Europe/London")
        await reader.goto(f"{base}/live/{slug}")
        await reader.wait_for_selector("main[data-connection='live']")
        await reader.screenshot(path=OUT / "reader.png")

        phone = await browser.new_page(viewport={"width": 390, "height": 844},
                                       device_scale_factor=2, locale="en-GB",
                                       timezone_id="Europe/London", is_mobile=True)
        await phone.goto(f"{base}/live/{slug}")
        await phone.wait_for_selector("main[data-connection='live']")
        await phone.evaluate("window.scrollTo(0, 700)")
        # A post arrives while the reader is further down: the button, not a jump.
        api = await browser.new_context()
        await api.request.post(
            f"{base}/api/streams/{slug}/posts",
            headers={"Authorization": f"Bearer {demo['token']}"},
            data={"body": "District 9 recount confirmed for tomorrow morning."})
        await phone.wait_for_selector("#new-updates:not([hidden])")
        await phone.screenshot(path=OUT / "reader-phone.png")

        desk = await browser.new_page(viewport={"width": 1200, "height": 900},
                                      locale="en-GB", timezone_id="Europe/London")
        await desk.goto(f"{base}/editor/login")
        await desk.get_by_label("Username").fill(demo["username"])
        await desk.get_by_label("Password").fill(demo["password"])
        await desk.get_by_role("button", name="Sign in").click()
        await desk.wait_for_url(f"{base}/editor")
        await desk.goto(f"{base}/editor/streams/{slug}")
        body = desk.locator("textarea").first
        await body.fill("**District 7**: Civic hold the seat with a majority of 412.\n\n"
                        "Turnout 49.1%.")
        await desk.wait_for_timeout(800)  # the live preview
        await desk.screenshot(path=OUT / "editor.png")
        await browser.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        process, demo = start_demo(Path(tmp), port)
        try:
            asyncio.run(shoot(f"http://127.0.0.1:{port}", demo))
        finally:
            process.terminate()
            process.wait(timeout=20)
    print(f"wrote {', '.join(sorted(p.name for p in OUT.glob('*.png')))} to {OUT}")


if __name__ == "__main__":
    main()
