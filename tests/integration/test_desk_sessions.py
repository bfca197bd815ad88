"""The desk's session cookie on the live transports: a signed-in editor follows drafts."""

from __future__ import annotations

import re

import httpx
from websockets.exceptions import ConnectionClosed

from bulletin.core import closecodes
from tests.conftest import EditorLogin

from .conftest import Api, LiveServer, events, recv, subscribe, ws_connect


async def session_cookie(server: LiveServer, username: str = "alice") -> str:
    """Sign in through the desk's form and return the session cookie's value."""
    async with httpx.AsyncClient(base_url=server.base) as client:
        form = await client.get("/editor/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        response = await client.post("/editor/login", data={
            "csrf_token": token.group(1), "username": username,
            "password": "correct horse battery", "next": "/editor"})
        assert response.status_code == 303
        return client.cookies["bulletin_session"]


async def test_a_signed_in_editor_follows_a_draft_over_websocket(
        server: LiveServer, api: Api, editor: EditorLogin) -> None:
    """With the session cookie /ws subscribes to drafts; without it they are not found."""
    await api.stream("plan", status="draft")
    cookie = await session_cookie(server)
    ws = await ws_connect(server.ws_url, additional_headers={
        "Cookie": f"bulletin_session={cookie}", "Origin": server.base})
    anonymous = await ws_connect(server.ws_url)
    try:
        assert await subscribe(ws, "plan") == 0
        await api.post("plan", "Embargoed until noon")
        (event,) = await events(ws, 1)
        assert event["post"]["body"] == "Embargoed until noon"
        await anonymous.send('{"type":"subscribe","stream":"plan"}')
        refused = await recv(anonymous)
        assert (refused["type"], refused["code"]) == ("error", "stream_not_found")
    finally:
        await ws.close()
        await anonymous.close()


async def test_the_cookie_does_not_open_websockets_from_other_sites(
        server: LiveServer, editor: EditorLogin) -> None:
    """A page on another origin is refused before the cookie is looked at (4003)."""
    cookie = await session_cookie(server)
    ws = await ws_connect(server.ws_url, additional_headers={
        "Cookie": f"bulletin_session={cookie}", "Origin": "https://evil.example"})
    try:
        await recv(ws)
        raise AssertionError("the connection should have been closed")
    except ConnectionClosed as closed:
        assert closed.rcvd is not None
        assert closed.rcvd.code == closecodes.FORBIDDEN_ORIGIN.code


async def test_a_signed_in_editor_follows_a_draft_over_sse(
        server: LiveServer, api: Api, editor: EditorLogin) -> None:
    """With the session cookie the SSE events URL of a draft streams; without, 404."""
    await api.stream("plan", status="draft")
    cookie = await session_cookie(server)
    headers = {"Accept": "text/event-stream"}
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as client:
        anonymous = await client.get("/api/streams/plan/events", headers=headers)
        assert anonymous.status_code == 404
        client.cookies.set("bulletin_session", cookie)
        async with client.stream("GET", "/api/streams/plan/events?since=0",
                                 headers=headers) as response:
            assert response.status_code == 200
            await api.post("plan", "Draft line")
            seen = ""
            async for chunk in response.aiter_text():
                seen += chunk
                if "Draft line" in seen:
                    break
    assert "event: post.created" in seen
