"""The OpenAPI document is valid and describes every endpoint the app serves."""

from __future__ import annotations

import re

import httpx
from openapi_spec_validator import validate
from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute


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
    """A real post and stream validate against their documented schemas."""
    import jsonschema

    document = (await editor_client.get("/api/openapi.json")).json()
    schemas = document["components"]["schemas"]
    await editor_client.post("/api/streams", json={"slug": "s", "title": "S", "status": "live"})
    post = (await editor_client.post("/api/streams/s/posts", json={"body": "hi"})).json()
    stream = (await editor_client.get("/api/streams/s")).json()
    page = (await editor_client.get("/api/streams/s/events")).json()
    root = {"components": {"schemas": schemas}}
    for name, value in [("PostWithSeq", post), ("StreamWithPinned", stream),
                        ("EventPage", page)]:
        jsonschema.validate(value, {**root, "$ref": f"#/components/schemas/{name}"})
