"""The app's outer layers: host names it answers to, and unexpected errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from bulletin.settings import Settings
from bulletin.web.app import create_app


@pytest.fixture
async def hosts_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app that answers for live.example and *.news.example only."""
    app = create_app(replace(settings, allowed_hosts=("live.example", "*.news.example")))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://live.example") as c:
            yield c


async def test_other_host_names_are_refused(hosts_client: httpx.AsyncClient) -> None:
    """With BULLETIN_ALLOWED_HOSTS, a page asked for under another Host is a 400 in JSON,
    so that a Host header cannot set the links of a page that caches share."""
    assert (await hosts_client.get("/live")).status_code == 200
    assert (await hosts_client.get("/live", headers={"Host": "a.news.example:8000"})
            ).status_code == 200
    refused = await hosts_client.get("/live", headers={"Host": "evil.example"})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_host"
    assert "evil.example" not in refused.text


async def test_health_checks_answer_any_host(hosts_client: httpx.AsyncClient) -> None:
    """Load balancers probe by address: /healthz and /readyz answer whatever the Host."""
    for path in ("/healthz", "/readyz"):
        response = await hosts_client.get(path, headers={"Host": "10.0.0.7:8000"})
        assert response.status_code == 200, path
