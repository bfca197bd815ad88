"""GET /metrics: Prometheus's text, to loopback and BULLETIN_METRICS_ALLOW only, with HTTP
requests labelled by route template; the documented dashboard uses real metric names."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.routing import Route

from bulletin.settings import Settings, SettingsError
from bulletin.web.app import create_app
from bulletin.web.metrics import LIVE, Metrics

DOCS = Path(__file__).resolve().parents[2] / "docs"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape: (name, labels) → value."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def scrape_from(app: Starlette, address: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=(address, 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        return await c.get("/metrics")


@pytest.fixture
async def app_with(settings: Settings) -> AsyncIterator[object]:
    """Starts apps with settings overrides, lifespans running."""
    contexts = []

    async def start(**overrides: object) -> Starlette:
        application = create_app(replace(settings, **overrides))
        context = application.router.lifespan_context(application)
        await context.__aenter__()
        contexts.append(context)
        return application

    yield start
    for context in reversed(contexts):
        await context.__aexit__(None, None, None)


async def test_loopback_reads_the_live_and_http_metrics(
        app: Starlette, client: httpx.AsyncClient) -> None:
    """From loopback, /metrics is Prometheus text naming every live metric and the process
    metrics; a 404 under a route is counted by its template, not its path."""
    assert (await client.get("/api/streams/no-such-story")).status_code == 404
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=")
    names = {family.name for family in text_string_to_metric_families(r.text)}
    assert {spec.name for spec in LIVE} <= names
    assert {"process_resident_memory_bytes", "bulletin_http_requests",
            "bulletin_http_request_duration_seconds",
            "bulletin_delivery_latency_seconds"} <= names
    values = samples(r.text)
    labels = frozenset({("route", "/api/streams/{slug}"), ("method", "GET"), ("status", "404")})
    assert values[("bulletin_http_requests_total", labels)] == 1
    assert values[("bulletin_http_request_duration_seconds_count", labels)] == 1
    assert "no-such-story" not in r.text
    assert values[("bulletin_broker_up", frozenset())] == 1
    assert values[("bulletin_connections", frozenset({("transport", "websocket")}))] == 0


async def test_a_path_no_route_matches_is_unmatched(
        app: Starlette, client: httpx.AsyncClient) -> None:
    """Made-up paths all count as one series, whatever they are."""
    for path in ("/x1", "/x2/y"):
        assert (await client.get(path)).status_code == 404
    values = samples((await client.get("/metrics")).text)
    labels = frozenset({("route", "unmatched"), ("method", "GET"), ("status", "404")})
    assert values[("bulletin_http_requests_total", labels)] == 2


async def test_other_addresses_get_a_404(app: Starlette) -> None:
    """A client not on loopback nor in the allow list gets the 404 of no such endpoint."""
    r = await scrape_from(app, "203.0.113.9")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


async def test_the_allow_list_lets_networks_in(app_with: object) -> None:
    """BULLETIN_METRICS_ALLOW admits the addresses and networks it names, and no others."""
    app = await app_with(metrics_allow=("203.0.113.0/24", "198.51.100.7"))  # type: ignore[operator]
    assert (await scrape_from(app, "203.0.113.9")).status_code == 200
    assert (await scrape_from(app, "198.51.100.7")).status_code == 200
    assert (await scrape_from(app, "198.51.100.8")).status_code == 404


async def test_metrics_can_be_turned_off(app_with: object) -> None:
    """BULLETIN_METRICS=0: no /metrics, even from loopback."""
    app = await app_with(metrics=False)  # type: ignore[operator]
    assert (await scrape_from(app, "127.0.0.1")).status_code == 404


def test_every_endpoint_has_one_template(app: Starlette) -> None:
    """Requests are labelled by their endpoint's template: no endpoint may serve two."""
    seen: dict[object, str] = {}
    for route in app.routes:
        if isinstance(route, Route):
            assert seen.setdefault(route.endpoint, route.path) == route.path, route.path


def test_who_may_read() -> None:
    """Loopback in every spelling, and the allowed networks, may read; nobody else, nor a
    client whose address is unknown or not an address."""
    metrics = Metrics(Settings(secret_key="k" * 40, metrics_allow=("10.0.0.0/8", "2001:db8::/32")))
    for host in ("127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1", "10.1.2.3",
                 "::ffff:10.1.2.3", "2001:db8::5"):
        assert metrics.allows(host), host
    for host in ("203.0.113.9", "11.0.0.1", "2001:db9::5", "testclient", "", None):
        assert not metrics.allows(host), host


def test_settings_refuse_a_malformed_allow_list() -> None:
    """A network that does not parse is refused, naming the variable."""
    with pytest.raises(SettingsError, match="METRICS_ALLOW"):
        Settings.from_env({"BULLETIN_METRICS_ALLOW": "10.0.0.0/8,not-a-network"})
    assert Settings.from_env({"BULLETIN_METRICS_ALLOW": "10.0.0.0/8, ::1"}).metrics_allow == (
        "10.0.0.0/8", "::1")
    with pytest.raises(SettingsError, match="METRICS_PORT"):
        Settings.from_env({"BULLETIN_METRICS_PORT": "70000"})


def test_the_dashboard_and_alerts_use_exported_metrics() -> None:
    """Every expression of docs/grafana-dashboard.json and every alert of
    docs/monitoring.md names only metrics Bulletin exports."""
    exported = {spec.name + ("_total" if spec.kind == "counter" else "") for spec in LIVE}
    exported |= {"bulletin_http_requests_total", "process_resident_memory_bytes",
                 "process_cpu_seconds_total", "process_open_fds"}
    for histogram in ("bulletin_http_request_duration_seconds",
                      "bulletin_delivery_latency_seconds"):
        exported |= {histogram + suffix for suffix in ("_bucket", "_sum", "_count")}
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", ())]
    alerts = re.findall(r"expr: (.+)", (DOCS / "monitoring.md").read_text())
    assert exprs and alerts
    for expr in exprs + alerts:
        used = set(re.findall(r"\b((?:bulletin|process)_[a-z_]+)", expr))
        assert used, expr
        assert used <= exported, (expr, used - exported)
