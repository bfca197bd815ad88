"""Browser tests: Debian's Chromium driven by Playwright against a real server.

Without Chromium (or the playwright package) these tests skip with the reason;
``BULLETIN_REQUIRE_BROWSER=1`` (set by .ci/run) turns that skip into a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import (  # noqa: F401 (fixtures used by the browser tests)
    Api,
    LiveServer,
    api,
    editor,
    server,
    start_server,
)

CHROMIUM = os.environ.get("BULLETIN_CHROMIUM", "/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("BULLETIN_REQUIRE_BROWSER") == "1"
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
# The password make_editor gives every test editor.
PASSWORD = "correct horse battery"


def browser_unavailable(reason: str) -> None:
    """Skip, or fail when the run requires the browser (CI)."""
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason} (BULLETIN_REQUIRE_BROWSER=1 makes this a failure)")
    pytest.skip(reason)  # no browser here; CI sets BULLETIN_REQUIRE_BROWSER=1


@pytest.fixture
def database_url(sqlite_template: Path, tmp_path: Path) -> str:
    """Browser tests run on SQLite only: the page behaviour does not depend on the database."""
    path = tmp_path / "bulletin.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A headless Chromium."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        browser_unavailable("the playwright package is not installed (pip install -e '.[test]')")
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 (once per test, before any I/O)
        browser_unavailable(f"Chromium not found at {CHROMIUM} (apt-get install -y chromium, "
                            "or set BULLETIN_CHROMIUM)")
    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(executable_path=CHROMIUM)
        yield instance
        await instance.close()


class ConsoleErrors:
    """Every console error and uncaught exception of the pages opened in a test."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        # Messages a test expects (a refused request it provoked on purpose).
        self.allowed: list[str] = []

    def watch(self, page: Any) -> None:
        """Record this page's errors."""
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(
            f"{page.url}: console.error: {msg.text}"))
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: uncaught: {exc}"))

    def unexpected(self) -> list[str]:
        """The errors no test said it expected."""
        return [e for e in self.errors if not any(a in e for a in self.allowed)]


@pytest.fixture
async def console() -> ConsoleErrors:
    """The console errors of the test's pages."""
    return ConsoleErrors()


@pytest.fixture
async def new_page(browser: Any, console: ConsoleErrors) -> AsyncIterator[
        Callable[..., Awaitable[Any]]]:
    """Open a page in a fresh browser context (its own cookies); no page may log an error."""
    contexts: list[Any] = []

    async def open_page(**context_options: Any) -> Any:
        context = await browser.new_context(**context_options)
        contexts.append(context)
        page = await context.new_page()
        console.watch(page)
        return page

    yield open_page
    for context in contexts:
        await context.close()
    assert console.unexpected() == [], "\n".join(console.unexpected())


async def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious and critical accessibility violations that axe-core finds on the page.

    The page's context must have been opened with ``bypass_csp=True``: the pages allow
    no inline script, and axe is injected as one.
    """
    if not os.path.exists(AXE):  # noqa: ASYNC240
        browser_unavailable(f"axe-core not installed at {AXE} (make test runs npm ci in "
                            "tests/browser; it needs npm)")
    # A post that just arrived slides in (its opacity rising) and fades its highlight:
    # audited mid-way, its text would fail the contrast check that the page, once still,
    # passes. Let such finite animations and transitions end first (not the infinite
    # ones, like the live badge's pulse).
    await page.evaluate(
        """() => Promise.race([
            Promise.all(document.getAnimations()
                .filter(a => a.playState === "running"
                        && a.effect && a.effect.getComputedTiming().endTime !== Infinity)
                .map(a => a.finished.catch(() => null))),
            new Promise(done => setTimeout(done, 10000)),
        ])""")
    await page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = await page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ["violations"]});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(" ")).slice(0, 5)}));
        }""")
    return [v for v in found if v["impact"] in ("serious", "critical")]


async def sign_in(page: Any, base: str, username: str, password: str = PASSWORD) -> None:
    """Sign in to the editor desk through its form."""
    await page.goto(f"{base}/editor/login")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{base}/editor**")
