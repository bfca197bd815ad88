"""The client library's own tests (client_js/test/), run with Node's built-in test runner."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests.conftest import service_unavailable

ROOT = Path(__file__).resolve().parent.parent
TEST_DIR = ROOT / "client_js" / "test"


def _node() -> str:
    """The path of a Node.js 18+ executable, or skip (fail under BULLETIN_REQUIRE_SERVICES)."""
    node = shutil.which("node")
    if node is None:
        service_unavailable("node (Node.js 18+) not found: the client library's tests need it")
        raise AssertionError("unreachable")
    version = subprocess.run([node, "--version"], capture_output=True, text=True,
                             timeout=30, check=False).stdout.strip()
    match = re.match(r"v(\d+)\.", version)
    if match is None or int(match.group(1)) < 18:
        service_unavailable(f"node {version or '?'} is too old: the client library's tests "
                            "need Node.js 18+")
    return node


def test_client_js_node_tests_pass() -> None:
    """`node --test` over client_js/test/ exits 0 (fake WebSocket, EventSource, fetch, clock)."""
    node = _node()
    # The files are listed rather than the directory: Node 21+ no longer searches a
    # directory argument (nodejs/node#50219); the explicit list works on 18 and later.
    files = sorted(str(p.relative_to(ROOT)) for p in TEST_DIR.glob("*.test.js"))
    assert files, f"no *.test.js files in {TEST_DIR}"
    result = subprocess.run(
        [node, "--test", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, (
        f"node --test {' '.join(files)} exited {result.returncode}\n"
        f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    )


def test_client_js_node_tests_pass_on_the_served_minified_modules(tmp_path: Path) -> None:
    """The same tests pass against the modules as the server serves them (minified by
    rjsmin): minifying changes bytes, never behaviour."""
    from bulletin.web.assets import Assets

    node = _node()
    served = Assets((ROOT / "client_js",), minify=True)
    source = Assets((ROOT / "client_js",), minify=False)
    modules = [name for name in served.files if name.endswith(".js")]
    assert "client.js" in modules and "websocket.js" in modules
    for name in modules:
        assert len(served.files[name].body) < len(source.files[name].body), name
        (tmp_path / name).write_bytes(served.files[name].body)
    (tmp_path / "package.json").write_bytes((ROOT / "client_js" / "package.json").read_bytes())
    tests = tmp_path / "test"
    tests.mkdir()
    for path in TEST_DIR.iterdir():
        (tests / path.name).write_bytes(path.read_bytes())
    files = sorted(f"test/{p.name}" for p in tests.glob("*.test.js"))
    result = subprocess.run([node, "--test", *files], cwd=tmp_path, capture_output=True,
                            text=True, timeout=110, check=False)
    assert result.returncode == 0, (
        f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}")
    assert "# fail 0" in result.stdout
