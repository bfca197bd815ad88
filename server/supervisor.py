"""``bulletin serve --workers N``: N server processes sharing one listening socket.

The parent binds the socket once and starts each worker as a fresh interpreter (spawn,
not fork: nothing of the parent's state, threads or event loop is inherited). Each worker
runs the full app with its own hub, database pool and broker connection, under
``BulletinServer`` and ``serving.config`` (the same HTTP and WebSocket limits as a single
``bulletin serve``, and the same shutdown watchdog) so that its readers are closed with
going-away when it stops; the kernel spreads new connections over the workers that
accept on the shared socket.

The parent restarts a worker that dies (a crash, ``kill -9``, the OOM killer), waiting
longer each time one dies soon after starting, so that a worker that cannot run does not
spin. SIGTERM or SIGINT stops every worker with SIGTERM, waits for their graceful
shutdown, and kills what is left after the shutdown limit.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType

from .metricsdir import MetricsDir
from .serving import listen
from .settings import Settings

log = logging.getLogger("bulletin.supervisor")

# uvicorn's exit status for a worker that failed before serving (its lifespan raised):
# restarting would fail the same way.
STARTUP_FAILURE = 3
# A worker that lived less than this is restarted after a growing delay.
QUICK_DEATH_SECONDS = 10.0
RESTART_DELAY_MAX = 30.0
POLL_SECONDS = 0.2


def bind(host: str, port: int) -> socket.socket:
    """The listening socket every worker accepts on."""
    return listen(host, port)


def run_worker(settings: Settings, host: str, port: int, sock: socket.socket,
               metrics_sock: socket.socket | None = None) -> None:
    """One worker: the app under BulletinServer on the shared socket (runs in the child)."""
    from . import logthrottle
    from .serving import BulletinServer, config
    from .web.app import create_app

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("bulletin").setLevel(logging.INFO)
    app = create_app(settings)
    worker_config = config(app, settings, host=host, port=port)
    logthrottle.install()  # after uvicorn.Config, which sets up the log handlers
    BulletinServer(worker_config, app).run(
        sockets=[sock] if metrics_sock is None else [sock, metrics_sock])


@dataclass
class Worker:
    """One worker process and when it started."""

    process: BaseProcess
    started: float


class Supervisor:
    """Starts, watches, restarts and stops the workers."""

    def __init__(self, settings: Settings, *, host: str, port: int, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"expected at least one worker, got {workers}")
        self.settings = settings
        self.host = host
        self.port = port
        self.count = workers
        self.workers: list[Worker] = []
        self._stop = threading.Event()
        self._context = multiprocessing.get_context("spawn")
        self._sock: socket.socket | None = None
        # The metrics: their own port's socket (shared like the main one), and the
        # directory the workers' multiprocess files go in (server/metricsdir.py).
        self._metrics_sock: socket.socket | None = None
        self._metrics: MetricsDir | None = None

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; returns the exit status."""
        self._sock = bind(self.host, self.port)
        if self.settings.metrics:
            self._metrics = MetricsDir()
            if self.settings.metrics_port:
                self._metrics_sock = bind(self.host, self.settings.metrics_port)
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        log.info("supervisor %d: starting %d workers on %s:%d", os.getpid(), self.count,
                 self.host, self.port)
        status = 0
        try:
            self.workers = [self._start() for _ in range(self.count)]
            quick_deaths = 0
            while not self._stop.wait(POLL_SECONDS):
                for index, worker in enumerate(self.workers):
                    if worker.process.is_alive():
                        continue
                    code = worker.process.exitcode
                    if self._metrics is not None:
                        self._metrics.worker_died(worker.process.pid)
                    if code == STARTUP_FAILURE:
                        log.error("worker %d could not start; stopping", worker.process.pid)
                        self._stop.set()
                        status = 1
                        break
                    lived = time.monotonic() - worker.started
                    # Once at once; again and again soon after starting: 1, 2, 4 ... s.
                    quick_deaths = quick_deaths + 1 if lived < QUICK_DEATH_SECONDS else 0
                    delay = (min(2.0 ** (quick_deaths - 2), RESTART_DELAY_MAX)
                             if quick_deaths > 1 else 0.0)
                    log.warning("worker %d exited with status %s after %.0f s; starting "
                                "another%s", worker.process.pid, code, lived,
                                f" in {delay:.0f} s" if delay else "")
                    if delay and self._stop.wait(delay):
                        break
                    self.workers[index] = self._start()
        finally:
            self._stop_all()
            self._sock.close()
            if self._metrics_sock is not None:
                self._metrics_sock.close()
            if self._metrics is not None:
                self._metrics.remove()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        log.info("supervisor %d: stopped", os.getpid())
        return status

    def _start(self) -> Worker:
        process = self._context.Process(
            target=run_worker,
            args=(self.settings, self.host, self.port, self._sock, self._metrics_sock),
            name="bulletin-worker")
        process.start()
        log.info("worker %d started", process.pid)
        return Worker(process, time.monotonic())

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop.set()

    def _stop_all(self) -> None:
        """SIGTERM every worker, wait for their graceful shutdown, then kill the rest."""
        for worker in self.workers:
            if worker.process.is_alive() and worker.process.pid is not None:
                os.kill(worker.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.shutdown_seconds + 5
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                log.warning("worker %d did not stop in time; killing it", worker.process.pid)
                worker.process.kill()
                worker.process.join()
