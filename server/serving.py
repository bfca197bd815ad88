"""Running the app under uvicorn with the live-delivery settings and a clean shutdown."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn
from starlette.applications import Starlette

from . import closecodes
from .settings import Settings
from .wsprotocol import BulletinWebSocketProtocol


class BulletinServer(uvicorn.Server):
    """uvicorn's server, closing live connections with going-away when it stops.

    uvicorn waits for open responses before it shuts the app down, and an SSE response
    never ends by itself: so the hub closes every connection first, right after the
    listening sockets stop accepting.
    """

    def __init__(self, config: uvicorn.Config, app: Starlette) -> None:
        super().__init__(config)
        self._app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        services = getattr(self._app.state, "services", None)
        if services is not None:
            services.live.close_all(closecodes.GOING_AWAY)
            # Let connections served through ASGI send() write their close frames before
            # uvicorn closes them with its own code.
            await asyncio.sleep(0.05)
        await super().shutdown(sockets)


def config(app: Starlette, settings: Settings, *, host: str, port: int,
           **overrides: Any) -> uvicorn.Config:
    """uvicorn settings for serving Bulletin (``overrides``: more uvicorn.Config arguments)."""
    options: dict[str, Any] = {"log_level": settings.log_level,
                               "ws": BulletinWebSocketProtocol, **overrides}
    return uvicorn.Config(
        app, host=host, port=port, proxy_headers=True, server_header=False,
        forwarded_allow_ips=list(settings.forwarded_allow_ips),
        timeout_graceful_shutdown=int(settings.shutdown_seconds),
        # Off: compression costs CPU per connection and makes each frame differ per
        # connection, which would defeat encoding a frame once for every reader.
        ws_per_message_deflate=False,
        ws_max_size=settings.max_frame_bytes,
        ws_ping_interval=settings.ping_seconds, ws_ping_timeout=settings.ping_seconds,
        **options,
    )


def serve(app: Starlette, settings: Settings, *, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM."""
    BulletinServer(config(app, settings, host=host, port=port), app).run()
