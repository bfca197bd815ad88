"""The reader's server-rendered pages, read as a crawler or a browser without JavaScript."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.usefixtures("app")


class Page(HTMLParser):
    """The parts of a page the tests look at."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.meta: dict[str, str] = {}
        self.links: dict[str, str] = {}
        self.json_ld: list[Any] = []
        self.scripts: list[dict[str, str | None]] = []
        self.article_ids: list[str] = []
        self.tags: dict[str, list[dict[str, str | None]]] = defaultdict(list)
        self._in_ld = False
        self._ld = ""
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags[tag].append(a)
        if tag == "meta":
            key = a.get("property") or a.get("name")
            if key:
                self.meta[key] = a.get("content") or ""
        elif tag == "link" and a.get("rel"):
            self.links[a["rel"] or ""] = a.get("href") or ""
        elif tag == "script":
            self.scripts.append(a)
            self._in_ld = a.get("type") == "application/ld+json"
        elif tag == "article":
            self.article_ids.append(a.get("id") or "")

    def handle_data(self, data: str) -> None:
        if self._in_ld:
            self._ld += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._in_ld:
            self.json_ld.append(json.loads(self._ld))
            self._in_ld, self._ld = False, ""


async def make_stream(editor_client: httpx.AsyncClient, slug: str = "vote", **fields: Any,
                      ) -> None:
    """A live stream."""
    body = {"slug": slug, "title": "Vote night", "description": "Every result.",
            "status": "live", **fields}
    r = await editor_client.post("/api/streams", json=body)
    assert r.status_code == 201, r.text


async def post(editor_client: httpx.AsyncClient, body: str, slug: str = "vote",
               pinned: bool = False) -> dict[str, Any]:
    """A new post's JSON."""
    r = await editor_client.post(f"/api/streams/{slug}/posts",
                                 json={"body": body, "pinned": pinned})
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


async def test_reader_page_shows_posts_newest_first_with_anchors(
        client: httpx.AsyncClient, editor_client: httpx.AsyncClient) -> None:
    """The live page lists the posts newest first, each with its #post-ID anchor."""
    await make_stream(editor_client)
    ids = [(await post(editor_client, f"Update number {i}"))["id"] for i in range(3)]
    r = await client.get("/live/vote")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    page = Page(r.text)
    assert page.article_ids == [f"post-{i}" for i in reversed(ids)]
    assert "Update number 2" in r.text
    assert f'href="/live/vote/posts/{ids[0]}"' in r.text
    seq = (await client.get("/api/streams/vote")).json()["seq"]
    assert seq >= 3 and f'data-seq="{seq}"' in r.text


async def test_reader_page_json_ld_is_a_live_blog_posting(
        client: httpx.AsyncClient, editor_client: httpx.AsyncClient) -> None:
    """The JSON-LD carries the story and one BlogPosting per post with the listed fields."""
    await make_stream(editor_client)
    first = await post(editor_client, "## Polls close\nCounting starts now.")
    await editor_client.patch(f"/api/posts/{first['id']}", json={"body": "## Polls closed\nYes."})
    page = Page((await client.get("/live/vote")).text)
    [data] = page.json_ld
    assert data["@context"] == "https://schema.org"
    assert data["@type"] == "LiveBlogPosting"
    assert data["headline"] == "Vote night"
    assert data["description"] == "Every result."
    assert data["url"] == "http://testserver/live/vote"
    for key in ("datePublished", "dateModified", "coverageStartTime"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data[key]), key
    assert "coverageEndTime" not in data
    [update] = data["liveBlogUpdate"]
    assert update["@type"] == "BlogPosting"
    assert update["headline"] == "Polls closed"
    assert update["articleBody"] == "Polls closed Yes."
    assert update["url"] == f"http://testserver/live/vote#post-{first['id']}"
    assert update["author"] == {"@type": "Person", "name": "Alice"}
    assert update["dateModified"] >= update["datePublished"]


async def test_date_published_never_changes_and_coverage_ends(
        client: httpx.AsyncClient, editor_client: httpx.AsyncClient) -> None:
    """datePublished stays when posts arrive and the story ends; coverageEndTime appears."""
    await make_stream(editor_client)
    before = Page((await client.get("/live/vote")).text).json_ld[0]
    await post(editor_client, "Later")
    r = await editor_client.patch("/api/streams/vote", json={"status": "ended"})
    assert r.status_code == 200, r.text
    after = Page((await client.get("/live/vote")).text).json_ld[0]
    assert after["datePublished"] == before["datePublished"]
    assert after["coverageEndTime"] >= after["coverageStartTime"]


async def test_share_metadata(client: httpx.AsyncClient,
                              editor_client: httpx.AsyncClient) -> None:
    """OpenGraph and Twitter card tags describe the story; the canonical URL is the page."""
    await make_stream(editor_client)
    page = Page((await client.get("/live/vote")).text)
    assert page.meta["og:title"] == "Vote night"
    assert page.meta["og:description"] == "Every result."
    assert page.meta["og:url"] == "http://testserver/live/vote"
    assert page.meta["og:type"] == "article"
    assert page.meta["twitter:card"] == "summary"
    assert page.meta["twitter:title"] == "Vote night"
    assert page.links["canonical"] == "http://testserver/live/vote"


async def test_public_url_setting_is_used_for_links(
        app: Any, client: httpx.AsyncClient, editor_client: httpx.AsyncClient) -> None:
    """BULLETIN_PUBLIC_URL replaces the request's address in canonical and JSON-LD URLs."""
    from dataclasses import replace

    services = app.state.services
    services.settings = replace(services.settings, public_url="https://live.example.com/")
    await make_stream(editor_client)
    page = Page((await client.get("/live/vote")).text)
    assert page.links["canonical"] == "https://live.example.com/live/vote"
    assert page.json_ld[0]["url"] == "https://live.example.com/live/vote"


async def test_key_events_are_listed_and_link_to_their_posts(
        client: httpx.AsyncClient, editor_client: httpx.AsyncClient) -> None:
    """Pinned posts appear under Key events with a link to the post's anchor."""
    await make_stream(editor_client)
    key = await post(editor_client, "**Result**: the mayor wins", pinned=True)
    await post(editor_client, "Reaction follows")
    text = (await client.get("/live/vote")).text
    section = text[text.index('id="key-events"'):text.index("</section>")]
    assert f'href="#post-{key["id"]}"' in section
    assert "Result: the mayor wins" in section
    assert "Reaction follows" not in section


async def test_no_key_events_section_is_hidden(
        client: httpx.AsyncClient, editor_client: httpx.AsyncClient) -> None:
    """Without pinned posts the key events section is rendered hidden (for the script)."""
    await make_stream(editor_client)
    text = (await client.get("/live/vote")).text
    assert re.search(r'<section class="key-events" id="key-events"[^>]*\shidden>', text)


async def test_load_older_pages_through_posts_without_javascript(
        client: httpx.AsyncClient, editor_client: httpx.AsyncClient) -> None:
    """"Load older" is a link to the next page of posts; following it shows the older ones."""
    await make_stream(editor_client)
    ids = [(await post(editor_client, f"Post {i}"))["id"] for i in range(25)]
    first = await client.get("/live/vote")
    page = Page(first.text)
    assert len(page.article_ids) == 20
    match = re.search(r'id="load-older" href="(/live/vote\?before=\d+)"', first.text)
    assert match is not None
    older = Page((await client.get(match.group(1))).text)
    assert older.article_ids == [f"post-{i}" for i in reversed(ids[:5])]
    assert "Back to the newest updates" in (await client.get(match.group(1))).text


async def test_post_permalink_page_has_share_metadata(
        client: httpx.AsyncClient, editor_client: httpx.AsyncClient) -> None:
    """Every post has a page of its own with its headline in the share tags."""
    await make_stream(editor_client)
    item = await post(editor_client, "# Turnout 47%\nThe highest since 2003.")
    r = await client.get(f"/live/vote/posts/{item['id']}")
    assert r.status_code == 200
    page = Page(r.text)
    assert page.meta["og:title"] == "Turnout 47%"
    assert page.meta["og:description"] == "Turnout 47% The highest since 2003."
    assert page.links["canonical"] == f"http://testserver/live/vote/posts/{item['id']}"
    assert page.json_ld[0]["@type"] == "BlogPosting"
    assert f'href="http://testserver/live/vote#post-{item["id"]}"' in r.text


@pytest.mark.parametrize("path", ["/live/nope", "/embed/nope", "/live/vote/posts/999",
                                  "/live/other/posts/1", "/live/vote/posts/99999999999"])
async def test_missing_things_are_html_404s(
        client: httpx.AsyncClient, editor_client: httpx.AsyncClient, path: str) -> None:
    """Unknown stories and posts (or a post asked for under another story) get a 404 page."""
    await make_stream(editor_client)
    await make_stream(editor_client, slug="other")
    await post(editor_client, "In vote")
    r = await client.get(path)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "is not here" in r.text


async def test_draft_streams_have_no_reader_page(
        client: httpx.AsyncClient, editor_client: httpx.AsyncClient) -> None:
    """A draft is invisible to readers: its page is a 404, and it is not in the list."""
    await make_stream(editor_client, slug="secret", status="draft")
    assert (await client.get("/live/secret")).status_code == 404
    assert (await client.get("/embed/secret")).status_code == 404
    assert "secret" not in (await client.get("/live")).text


async def test_stream_list_separates_live_from_ended_newest_first(
        client: httpx.AsyncClient, editor_client: httpx.AsyncClient) -> None:
    """/live lists live stories under one heading, the newest first, and ended ones under
    another, the latest ended first, each with its times as <time datetime>."""
    for slug in ("first-live", "old-one", "second-live", "older-one"):
        await make_stream(editor_client, slug=slug, title=slug.replace("-", " ").title())
    await editor_client.patch("/api/streams/older-one", json={"status": "ended"})
    await editor_client.patch("/api/streams/old-one", json={"status": "ended"})
    text = (await client.get("/live")).text
    live_at, ended_at = text.index("<h2 id=\"live-now\">"), text.index("<h2 id=\"ended-stories\">")
    order = sorted(("Second Live", "First Live", "Old One", "Older One"), key=text.index)
    assert order == ["Second Live", "First Live", "Old One", "Older One"]
    assert live_at < text.index("Second Live") < text.index("First Live") < ended_at
    times = Page(text).tags["time"]
    assert len(times) == 2 * 2 + 2 * 2  # live: started, updated; ended: started, ended
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", t["datetime"] or "")
               for t in times)
    assert "Started" in text and "Last updated" in text and "Ended <time" in text
    assert re.search(r">\d\d:\d\d UTC, \d+ \w{3} \d{4}</time>", text)


async def test_stream_list_says_when_nothing_is_live(
        client: httpx.AsyncClient, editor_client: httpx.AsyncClient) -> None:
    """With no story at all the page says so in a sentence; with only ended ones it says
    none is live and lists them below."""
    empty = (await client.get("/live")).text
    assert "No story is live right now" in empty and "ended-stories" not in empty
    await make_stream(editor_client, slug="over", title="Over")
    await editor_client.patch("/api/streams/over", json={"status": "ended"})
    text = (await client.get("/live")).text
    assert "No story is live right now. The latest ended ones are below." in text
    assert text.index("ended-stories") < text.index("Over</a>")


@pytest.mark.parametrize(("accept", "html"), [
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),
    ("text/html", True),
    ("application/json", False),
    ("*/*", False),
    (None, False),
    ("text/html;q=0.5, application/json", False),
    ("text/html, application/json;q=0.1, */*;q=0.8", True),
])
async def test_the_root_answers_a_browser_with_the_story_list(
        client: httpx.AsyncClient, editor_client: httpx.AsyncClient,
        accept: str | None, html: bool) -> None:
    """GET / is the story list for an Accept that ranks HTML first, the JSON index for API
    clients; either way it varies on Accept."""
    await make_stream(editor_client, slug="now", title="Happening now")
    headers = {} if accept is None else {"Accept": accept}
    response = await client.get("/", headers=headers)
    assert response.status_code == 200
    assert "Accept" in response.headers["vary"].split(", ")
    if html:
        assert response.headers["content-type"].startswith("text/html")
        assert "<h1>Live stories</h1>" in response.text and "Happening now" in response.text
    else:
        assert response.json()["links"]["stories"] == "/live"


async def test_markup_in_titles_and_posts_is_inert(
        client: httpx.AsyncClient, editor_client: httpx.AsyncClient) -> None:
    """Script in a title, a description or a post never reaches the page as markup."""
    payload = '</script><script>alert(1)</script><img src=x onerror=alert(2)>'
    await make_stream(editor_client, title=payload, description=payload)
    await post(editor_client, payload + "\n\n[x](javascript:alert(3))")
    text = (await client.get("/live/vote")).text
    page = Page(text)
    assert page.tags["img"] == []
    assert [s.get("type") for s in page.scripts] == ["application/ld+json", "module"]
    for attrs in (a for tag in page.tags.values() for a in tag):
        assert not [k for k in attrs if k.startswith("on")], attrs
        assert not (attrs.get("href") or "").lower().startswith("javascript:"), attrs
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in text
    # The JSON-LD cannot be closed from inside either: it parses back to the title.
    assert page.json_ld[0]["headline"] == payload


async def test_pages_carry_a_strict_content_security_policy(
        client: httpx.AsyncClient, editor_client: httpx.AsyncClient) -> None:
    """No inline script can run; the live page may not be framed elsewhere, the embed may."""
    await make_stream(editor_client)
    live = await client.get("/live/vote")
    policy = live.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'self'" in policy
    embed = await client.get("/embed/vote")
    assert "frame-ancestors *" in embed.headers["content-security-policy"]
    assert live.headers["cache-control"].startswith("public, max-age=")


async def test_embed_has_minimal_chrome_and_is_not_indexed(
        client: httpx.AsyncClient, editor_client: httpx.AsyncClient) -> None:
    """The embed shows the feed without the story header, links to the full page, noindex."""
    await make_stream(editor_client)
    await post(editor_client, "Inside the frame")
    r = await client.get("/embed/vote")
    page = Page(r.text)
    assert "Inside the frame" in r.text
    assert page.meta["robots"] == "noindex"
    assert page.links["canonical"] == "http://testserver/live/vote"
    assert "data-embed" in r.text
    assert 'class="story-description"' not in r.text
    assert page.json_ld == []


async def test_pages_load_their_scripts_as_modules_from_versioned_urls(
        app: Any, client: httpx.AsyncClient, editor_client: httpx.AsyncClient) -> None:
    """The page's script is reader.js, a module under the assets' current version."""
    await make_stream(editor_client)
    page = Page((await client.get("/live/vote")).text)
    version = app.state.assets.version
    assert {"type": "module", "src": f"/static/{version}/reader.js"} in page.scripts


async def _module_closure(client: httpx.AsyncClient, url: str) -> set[str]:
    """Every module URL a browser meets by following the static imports from ``url``."""
    base = url.rsplit("/", 1)[0]
    seen: set[str] = set()
    queue = [url]
    while queue:
        current = queue.pop()
        if current in seen:
            continue
        seen.add(current)
        body = (await client.get(current)).text
        queue += [f"{base}/{name}" for name in
                  re.findall(r'(?:import|export)\b[^;"\']*?(?:from\s*)?"\./([\w.-]+\.js)"', body)]
    return seen


@pytest.mark.parametrize("path", ["/live/vote", "/embed/vote", "post"])
async def test_pages_preload_every_module_their_script_imports(
        client: httpx.AsyncClient, editor_client: httpx.AsyncClient, path: str) -> None:
    """A reader page names its module script and every module it imports, directly or
    not, in <link rel="modulepreload"> tags in the head, so the split client costs no round
    trips; and it preloads nothing it does not use."""
    await make_stream(editor_client)
    if path == "post":
        path = f"/live/vote/posts/{(await post(editor_client, 'An update'))['id']}"
    r = await client.get(path)
    head = r.text.split("</head>")[0]
    preloaded = set(re.findall(r'<link rel="modulepreload" href="([^"]+)">', head))
    (script,) = [s["src"] for s in Page(r.text).scripts if s.get("type") == "module"]
    assert script is not None
    assert preloaded == await _module_closure(client, script)
    assert len(preloaded) >= 2


async def test_desk_pages_preload_the_editor_modules(editor_client: httpx.AsyncClient) -> None:
    """The desk's pages (the sign-in page among them) preload editor.js and everything it
    imports."""
    r = await editor_client.get("/editor/login")
    assert r.status_code == 200
    head = r.text.split("</head>")[0]
    preloaded = set(re.findall(r'<link rel="modulepreload" href="([^"]+)">', head))
    (script,) = [s["src"] for s in Page(r.text).scripts if s.get("type") == "module"]
    assert script is not None and script.endswith("/editor.js")
    assert preloaded == await _module_closure(editor_client, script)
