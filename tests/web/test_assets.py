"""The browser files under /static/{version}/: long-lived caching, ETags and versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from bulletin.web.assets import Assets


async def test_current_version_is_cached_for_a_year(app: Any, client: httpx.AsyncClient) -> None:
    """A file under the current version is immutable for a year and has an ETag."""
    version = app.state.assets.version
    r = await client.get(f"/static/{version}/client.js")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["etag"].startswith('"')
    assert "export class BulletinClient" in r.text


async def test_old_version_still_serves_but_is_revalidated(
        client: httpx.AsyncClient) -> None:
    """A page cached across a deploy still gets the file, marked no-cache."""
    r = await client.get("/static/000000000000/reader.css")
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-cache"


async def test_matching_etag_gets_304(app: Any, client: httpx.AsyncClient) -> None:
    """If-None-Match with the file's ETag is answered 304 with no body."""
    url = f"/static/{app.state.assets.version}/bulletin.css"
    etag = (await client.get(url)).headers["etag"]
    r = await client.get(url, headers={"If-None-Match": f'W/{etag}, "other"'})
    assert r.status_code == 304
    assert r.content == b""


async def test_unknown_files_are_404(app: Any, client: httpx.AsyncClient) -> None:
    """Only the served files exist: no directory walking, no other names."""
    version = app.state.assets.version
    for name in ("nope.js", "..%2Fsettings.py", "package.json"):
        assert (await client.get(f"/static/{version}/{name}")).status_code == 404


def test_version_changes_when_a_file_changes(tmp_path: Path) -> None:
    """The version is a hash of every file: editing one gives new URLs."""
    (tmp_path / "a.js").write_text("export const a = 1;\n")
    first = Assets((tmp_path,))
    assert first.url("a.js") == f"/static/{first.version}/a.js"
    (tmp_path / "a.js").write_text("export const a = 2;\n")
    assert Assets((tmp_path,)).version != first.version


def test_javascript_is_served_minified_unless_switched_off(tmp_path: Path) -> None:
    """A module is served without its comments and indentation (rjsmin), its imports
    still read from the source; with minify off it is served byte for byte."""
    source = b'// a comment\nimport { a } from "./a.js";\n/** doc */\nexport const b = a  +  1;\n'
    (tmp_path / "b.js").write_bytes(source)
    (tmp_path / "a.js").write_bytes(b"export const a = 1;\n")
    minified = Assets((tmp_path,))
    body = minified.files["b.js"].body
    assert b"comment" not in body and b"doc" not in body
    assert b'from"./a.js"' in body and len(body) < len(source)
    assert minified.imports["b.js"] == ["a.js"]
    assert minified.preloads("b.js") == [minified.url("b.js"), minified.url("a.js")]
    plain = Assets((tmp_path,), minify=False)
    assert plain.files["b.js"].body == source
    assert plain.version != minified.version
