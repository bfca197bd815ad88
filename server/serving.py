"""Running the app under uvicorn with the live-delivery settings and a clean shutdown.

``config`` is the one place that says how Bulletin runs under uvicorn, for ``bulletin
serve`` and for every ``--workers`` process alike: its HTTP protocol (bounded headers,
header and body timeouts, closes that end: server/live/uvicorn_http.py) and its WebSocket
protocol (raw frames, bounded messages and outgoing bytes: server/live/uvicorn_ws.py).

Shutdown: SIGTERM or SIGINT closes live connections with going-away at once, lets
requests under way finish, and ends the process within ``shutdown_seconds`` (plus a
second of margin) whatever the load: a watchdog thread, independent of the event loop,
ends the process with one log line if the graceful path has not finished by then.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import threading
from types import FrameType
from typing import Any

import uvicorn
from starlette.applications import Starlette

from .core import closecodes
from .live.uvicorn_http import BulletinHttpProtocol, Lingering, shutdown_grace
from .live.uvicorn_ws import BulletinWebSocketProtocol
from .settings import Settings

log = logging.getLogger("bulletin.serving")
# Seconds past shutdown_seconds before the watchdog ends the process: time for the
# lifespan to close the database and broker after the connections are gone.
WATCHDOG_MARGIN = 1.0
# Exit status of a process the watchdog ended (a graceful stop exits as the signal does).
WATCHDOG_EXIT = 1


class ShutdownWatchdog:
    """Ends the process if a shutdown outlives its limit.

    The thread starts with the server and sleeps until ``begin`` (safe to call from a
    signal handler: it only sets an event), so that it fires even when the event loop is
    too busy, or blocked, to finish the shutdown.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._begun = threading.Event()
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="bulletin-shutdown-watchdog",
                                        daemon=True)

    def start(self) -> None:
        """Start the (sleeping) thread."""
        self._thread.start()

    def begin(self) -> None:
        """The shutdown has begun: the countdown starts."""
        self._begun.set()

    def finish(self) -> None:
        """The shutdown is over (or the server stopped without one): the thread ends."""
        self._finished.set()
        self._begun.set()

    def _watch(self) -> None:
        self._begun.wait()
        if self._finished.wait(self.seconds):
            return
        # Logging may block behind a handler that the stuck main thread holds: give it a
        # moment in a thread of its own, then exit regardless.
        line = threading.Thread(
            target=log.error, daemon=True,
            args=("shutdown did not finish within %.1f s of the signal; exiting now",
                  self.seconds))
        line.start()
        line.join(1.0)
        os._exit(WATCHDOG_EXIT)


class BulletinServer(uvicorn.Server):
    """uvicorn's server, closing live connections with going-away when it stops.

    uvicorn waits for open responses before it shuts the app down, and an SSE response
    never ends by itself: so the hub closes every connection first, right after the
    listening sockets stop accepting. A signal also starts the shutdown watchdog.
    """

    def __init__(self, config: uvicorn.Config, app: Starlette) -> None:
        super().__init__(config)
        self._app = app
        settings: Settings | None = getattr(app.state, "settings", None)
        self._settings = settings
        limit = settings.shutdown_seconds if settings else config.timeout_graceful_shutdown
        # No limit (an app not made by create_app, uvicorn waiting for ever): no watchdog.
        self.watchdog = ShutdownWatchdog(limit + WATCHDOG_MARGIN) if limit else None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        settings = self._settings
        if sockets is None and settings is not None and settings.metrics \
                and settings.metrics_port:
            # The metrics' own port, served by the same app (which tells the two apart by
            # the port a request came in on: web/requestmetrics.py).
            sockets = [self.config.bind_socket(),
                       listen(self.config.host, settings.metrics_port)]
        # What start-up built (modules, the app, its engines) lives as long as the process.
        # Kept out of the collector's sight, a full collection scans only what serving made
        # since: with 1,000 readers on the bench, pauses of 52-65 ms instead of 162 ms,
        # which every reader of every story waits through (docs/benchmarks.md).
        await super().startup(sockets)
        gc.collect()
        gc.freeze()

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        if self.watchdog is None:
            await super().serve(sockets)
            return
        self.watchdog.start()
        try:
            await super().serve(sockets)
        finally:
            self.watchdog.finish()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.watchdog is not None:
            self.watchdog.begin()
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for server in self.servers:
            server.close()
        close_connections = getattr(self._app.state, "close_connections", None)
        if close_connections is not None:
            close_connections(closecodes.GOING_AWAY)
            # Let connections served through ASGI send() write their close frames before
            # uvicorn closes them with its own code.
            await asyncio.sleep(0.05)
        await super().shutdown(sockets)
        lingering = getattr(self.config.http, "lingering", None)
        if isinstance(lingering, Lingering):
            # Closed connections still taking their last bytes get what is left of their
            # grace, within the shutdown grace and the shutdown limit; then they are reset.
            grace = 0.0
            if self._settings is not None:
                left = self._settings.shutdown_seconds - (loop.time() - started)
                grace = max(0.0, min(shutdown_grace(self._settings), left))
            try:
                await asyncio.wait_for(lingering.wait(), grace)
            except TimeoutError:
                pass
            lingering.reset_all()


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` that child processes may inherit."""
    family, kind, proto, _name, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def config(app: Starlette, settings: Settings, *, host: str, port: int,
           **overrides: Any) -> uvicorn.Config:
    """uvicorn settings for serving Bulletin (``overrides``: more uvicorn.Config arguments)."""
    lingering = Lingering()
    options: dict[str, Any] = {
        "log_level": settings.log_level.lower(),
        # Logging is set up once per process, by logsetup.configure (the CLI, each worker):
        # uvicorn only sets its loggers' level, and its access log is ours (bulletin.access).
        "log_config": None,
        "access_log": False,
        "http": BulletinHttpProtocol.configured(settings, lingering),
        "ws": BulletinWebSocketProtocol.configured(settings, lingering),
        # Idle seconds between keep-alive requests (uvicorn's own timer).
        "timeout_keep_alive": settings.keepalive_seconds,
        **overrides,
    }
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
