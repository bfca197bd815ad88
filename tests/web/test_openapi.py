"""The OpenAPI document is valid and describes every endpoint the app serves."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
from openapi_spec_validator import validate
from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute

from bulletin.store import accounts
from bulletin.store.db import Database
from tests.conftest import make_editor


async def test_openapi_document_is_valid(client: httpx.AsyncClient) -> None:
    """GET /api/openapi.json is a valid OpenAPI 3.1 document."""
    response = await client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    validate(document)


async def test_every_route_is_documented(app: Starlette, client: httpx.AsyncClient) -> None:
    """Each served API (path, method) has an operation in the document, and nothing extra."""
    document = (await client.get("/api/openapi.json")).json()
    documented = {
        (path, method.upper())
        for path, item in document["paths"].items()
        for method in item if method != "parameters"
    }
    served = set()
    for route in app.routes:
        if isinstance(route, WebSocketRoute):
            served.add((route.path, "GET"))
            continue
        assert isinstance(route, Route)
        if not route.include_in_schema:  # HTML pages and static files, not the API
            continue
        path = re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", route.path)
        served |= {(path, m) for m in (route.methods or set()) if m != "HEAD"}
    assert served == documented


async def test_documented_examples_match_real_responses(
    editor_client: httpx.AsyncClient,
) -> None:
    """A real post and stream (as an editor sees it, with readers) validate against their
    documented schemas."""
    import jsonschema

    document = (await editor_client.get("/api/openapi.json")).json()
    schemas = document["components"]["schemas"]
    await editor_client.post("/api/streams", json={"slug": "s", "title": "S", "status": "live"})
    post = (await editor_client.post("/api/streams/s/posts", json={"body": "hi"})).json()
    stream = (await editor_client.get("/api/streams/s")).json()
    assert stream["readers"] == 0  # editors' own field, documented in Stream
    page = (await editor_client.get("/api/streams/s/events")).json()
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    scheduled = (await editor_client.post("/api/streams/s/posts",
                                          json={"body": "later", "publish_at": later})).json()
    upcoming = (await editor_client.get("/api/streams/s/posts?status=scheduled")).json()
    assert upcoming["posts"][0]["status"] == "scheduled"
    root = {"components": {"schemas": schemas}}
    for name, value in [("PostWithSeq", post), ("StreamWithPinned", stream),
                        ("EventPage", page), ("PostWithSeq", scheduled),
                        ("PostPage", upcoming)]:
        jsonschema.validate(value, {**root, "$ref": f"#/components/schemas/{name}"})


async def test_post_preconditions_are_documented(client: httpx.AsyncClient) -> None:
    """PATCH and DELETE of a post take If-Match and may answer 412; the answers that carry
    a post name its ETag header."""
    item = (await client.get("/api/openapi.json")).json()["paths"]["/api/posts/{id}"]
    for method in ("patch", "delete"):
        assert [p["name"] for p in item[method]["parameters"]] == ["If-Match"]
        assert "precondition_failed" in item[method]["responses"]["412"]["description"]
    for method, status in (("get", "200"), ("patch", "200"), ("patch", "412")):
        assert "ETag" in item[method]["responses"][status]["headers"]


async def test_token_answers_match_their_schemas(app: Starlette, db: Database) -> None:
    """The admin token list (a scoped, stream-bound, expiring token in it), a revoked
    token and GET /api/me validate against TokenList, Token and Me."""
    import jsonschema

    root = await make_editor(db, "root", role="admin")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                 headers=root.headers) as admin:
        document = (await admin.get("/api/openapi.json")).json()
        me = (await admin.get("/api/me")).json()  # last_used_at is now a time, not null
        assert (await admin.post("/api/streams", json={"slug": "s", "title": "S"})
                ).status_code == 201
        async with db.write() as session:
            editor = await accounts.get_editor(session, username="root")
            await accounts.create_token(session, editor=editor, name="bound", scope="read",
                                        streams=["s"], expires_in=timedelta(days=1))
        listed = (await admin.get("/api/tokens")).json()
        revoked = (await admin.delete(f"/api/tokens/{listed['tokens'][1]['id']}")).json()
    root_schemas = {"components": {"schemas": document["components"]["schemas"]}}
    assert listed["tokens"][1]["last_used_at"] is not None
    assert listed["tokens"][0]["streams"] == ["s"] and listed["tokens"][0]["expires_at"]
    assert me["token"]["scope"] == "admin"
    for name, value in [("TokenList", listed), ("Token", revoked), ("Me", me)]:
        jsonschema.validate(value, {**root_schemas, "$ref": f"#/components/schemas/{name}"})
