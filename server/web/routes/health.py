"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ...live.brokers import BrokerState
from ..services import services

log = logging.getLogger("bulletin")
READY_TIMEOUT_SECONDS = 2.0


async def healthz(request: Request) -> Response:
    """GET /healthz: the process is up and serving."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """GET /readyz: 503 while the database does not answer; the broker's state is reported.

    A broker outage does not make the process unready: posting and this process's own
    readers keep working, and taking every process out of a load balancer because their
    shared Redis is away would turn a degraded service into none.
    """
    svc = services(request)
    broker = "ok" if svc.broker.state is BrokerState.CONNECTED else svc.broker.state.value
    try:
        await asyncio.wait_for(svc.db.ping(), READY_TIMEOUT_SECONDS)
    except Exception as exc:
        log.warning("readiness check failed: %s", exc)
        return JSONResponse(
            {"status": "unavailable", "checks": {"database": "unreachable", "broker": broker},
             "error": {"code": "database_unavailable", "message": "the database is unreachable",
                       "details": None}},
            status_code=503, headers={"Retry-After": "5"})
    return JSONResponse({"status": "ready" if broker == "ok" else "degraded",
                         "checks": {"database": "ok", "broker": broker}})


def routes() -> list[BaseRoute]:
    """The probe routes."""
    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
