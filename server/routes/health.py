"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..services import services

log = logging.getLogger("bulletin")
READY_TIMEOUT_SECONDS = 2.0


async def healthz(request: Request) -> Response:
    """GET /healthz: the process is up and serving."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """GET /readyz: the database answers; 503 when it does not."""
    try:
        await asyncio.wait_for(services(request).db.ping(), READY_TIMEOUT_SECONDS)
    except Exception as exc:
        log.warning("readiness check failed: %s", exc)
        return JSONResponse(
            {"status": "unavailable", "checks": {"database": "unreachable"},
             "error": {"code": "database_unavailable", "message": "the database is unreachable",
                       "details": None}},
            status_code=503, headers={"Retry-After": "5"})
    return JSONResponse({"status": "ready", "checks": {"database": "ok"}})


def routes() -> list[BaseRoute]:
    """The probe routes."""
    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
