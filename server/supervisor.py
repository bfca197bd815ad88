"""``bulletin serve --workers N``: N server processes sharing one listening socket.

The parent binds the socket once and starts each worker as a fresh interpreter (spawn,
not fork: nothing of the parent's state, threads or event loop is inherited, and every
worker imports the code on disk when it starts). Each worker reads its settings from the
environment itself (with the parent's secret key), runs the full app with its own hub,
database pool and broker connection, under ``BulletinServer`` and ``serving.config`` (the
same HTTP and WebSocket limits as a single ``bulletin serve``, and the same shutdown
watchdog) so that its readers are closed with going-away when it stops; the kernel spreads
new connections over the workers that accept on the shared socket.

Each worker beats: once its app has started and it accepts on the socket, its event loop
writes the time into a value shared with the parent, every second. The first beat says the
worker is ready; a worker whose beats stop for ``worker_timeout_seconds`` (its loop is
stuck, or it is stopped) is replaced: SIGTERM, a new worker at once, SIGKILL if the old one
has not gone within a few seconds. The beat comes from the loop, not a thread, because a
thread would go on beating while the loop is stuck.

The parent restarts a worker that dies (a crash, ``kill -9``, the OOM killer), waiting
longer each time one dies soon after starting, so that a worker that cannot run does not
spin. SIGHUP restarts the workers one at a time (``_roll``): a new worker, ready, then the
old one stopped gracefully, then the next, so that the port is served throughout. A
SIGHUP during a rolling restart makes one more follow it, so that every worker ends up
running what was on disk at the last SIGHUP. SIGTERM or SIGINT (at any time, a rolling
restart included) stops every worker with SIGTERM, waits for their graceful shutdown, and
kills what is left after the shutdown limit.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from .metricsdir import MetricsDir
from .serving import BulletinServer, listen
from .settings import Settings

log = logging.getLogger("bulletin.supervisor")

# uvicorn's exit status for a worker that failed before serving (its lifespan raised):
# restarting would fail the same way.
STARTUP_FAILURE = 3
# A worker that lived less than this is restarted after a growing delay.
QUICK_DEATH_SECONDS = 10.0
RESTART_DELAY_MAX = 30.0
POLL_SECONDS = 0.2
# How often a worker's event loop beats.
BEAT_SECONDS = 1.0
# How long a new worker may take to become ready (or the worker timeout, if longer).
STARTUP_SECONDS = 60.0
# How long a worker that stopped beating gets to stop after SIGTERM before SIGKILL.
HUNG_GRACE_SECONDS = 5.0


def bind(host: str, port: int) -> socket.socket:
    """The listening socket every worker accepts on."""
    return listen(host, port)


# --- the worker (runs in the child) -------------------------------------------------------

def run_worker(secret_key: str, host: str, port: int, sock: socket.socket,
               beat: ctypes.c_double, number: int = 0,
               metrics_sock: socket.socket | None = None) -> None:
    """One worker: the app under BulletinServer on the shared socket (and the metrics'
    own, if any), beating to ``beat``; ``number`` (1..N, kept by its replacement) is on
    its log lines."""
    from .logsetup import configure
    from .serving import config
    from .web.app import create_app

    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the supervisor's signal (a hangup too)
    settings = Settings.from_env(secret_key=secret_key)
    configure(settings, worker=number)
    app = create_app(settings)
    worker_config = config(app, settings, host=host, port=port)
    WorkerServer(worker_config, app, beat).run(
        sockets=[sock] if metrics_sock is None else [sock, metrics_sock])


class WorkerServer(BulletinServer):
    """A worker's server: beats to the supervisor from its event loop once started."""

    def __init__(self, config: uvicorn.Config, app: Starlette, beat: ctypes.c_double) -> None:
        super().__init__(config, app)
        self._beat = beat
        self._beating: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:  # the lifespan started and the socket accepts: ready
            self._beating = asyncio.create_task(self._beat_forever())

    async def _beat_forever(self) -> None:
        while True:
            self._beat.value = time.monotonic()  # CLOCK_MONOTONIC: one clock per machine
            await asyncio.sleep(BEAT_SECONDS)


# --- the supervisor (the parent) ----------------------------------------------------------

@dataclass(eq=False)
class Worker:
    """One worker process, when it started, its last beat (0: none yet) and its number
    (1..N, on its log lines)."""

    process: BaseProcess
    started: float
    beat: ctypes.c_double
    number: int
    # Whether "ready" was logged for it.
    announced: bool = False

    @property
    def ready(self) -> bool:
        """Whether the worker has started serving (it has beaten once)."""
        return self.beat.value > 0

    @property
    def pid(self) -> int | None:
        """The worker's process id."""
        return self.process.pid

    def silent_for(self, now: float) -> float:
        """Seconds since the last beat (since the start, before the first one)."""
        return now - (self.beat.value or self.started)


class Supervisor:
    """Starts, watches, restarts, rolls and stops the workers."""

    def __init__(self, settings: Settings, *, host: str, port: int, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"expected at least one worker, got {workers}")
        self.settings = settings
        self.host = host
        self.port = port
        self.count = workers
        self.workers: list[Worker] = []
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._context = multiprocessing.get_context("spawn")
        self._sock: socket.socket | None = None
        self._status = 0
        self._quick_deaths = 0
        # A new worker of a rolling restart, not yet ready; workers told to stop, each with
        # the time after which it is killed.
        self._joining: Worker | None = None
        self._leaving: list[tuple[Worker, float]] = []
        # The metrics: their own port's socket (shared like the main one), and the
        # directory the workers' multiprocess files go in (server/metricsdir.py).
        self._metrics_sock: socket.socket | None = None
        self._metrics: MetricsDir | None = None

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT, rolling on SIGHUP; returns the exit status."""
        self._sock = bind(self.host, self.port)
        if self.settings.metrics:
            self._metrics = MetricsDir()
            if self.settings.metrics_port:
                self._metrics_sock = bind(self.host, self.settings.metrics_port)
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        log.info("supervisor %d: starting %d workers on %s:%d", os.getpid(), self.count,
                 self.host, self.port)
        try:
            self.workers = [self._start(index + 1) for index in range(self.count)]
            while not self._stop.wait(POLL_SECONDS):
                self._supervise()
                if self._reload.is_set() and not self._stop.is_set():
                    self._reload.clear()
                    self._roll()
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
        return self._status

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        (self._reload if signum == signal.SIGHUP else self._stop).set()

    def _start(self, number: int) -> Worker:
        """Start worker ``number`` (1..N: a replacement keeps the number it replaces)."""
        beat = self._context.RawValue(ctypes.c_double, 0.0)  # no lock a worker could die holding
        process = self._context.Process(
            target=run_worker, name="bulletin-worker",
            args=(self.settings.secret_key, self.host, self.port, self._sock, beat, number,
                  self._metrics_sock))
        process.start()
        log.info("worker %d started", process.pid)
        return Worker(process, time.monotonic(), beat, number)

    # --- watching ---------------------------------------------------------------------

    def _supervise(self) -> None:
        """One look at every worker: replace the dead and the silent, reap the leaving."""
        now = time.monotonic()
        for index, worker in enumerate(self.workers):
            if self._stop.is_set():
                return
            if not worker.process.is_alive():
                self._replace_dead(index, worker)
            elif worker.ready and not worker.announced:
                worker.announced = True
                log.info("worker %d ready after %.1f s", worker.pid, now - worker.started)
            elif worker.silent_for(now) > self._limit(worker):
                log.error("worker %d %s for %.1f s (limit %g s); replacing it", worker.pid,
                          "missed its heartbeats" if worker.ready else "did not become ready",
                          worker.silent_for(now), self._limit(worker))
                self._retire(worker, HUNG_GRACE_SECONDS)
                self.workers[index] = self._start(worker.number)
        self._reap()

    def _limit(self, worker: Worker) -> float:
        timeout = self.settings.worker_timeout_seconds
        return timeout if worker.ready else max(timeout, STARTUP_SECONDS)

    def _replace_dead(self, index: int, worker: Worker) -> None:
        self._gone(worker)
        code = worker.process.exitcode
        if code == STARTUP_FAILURE:
            log.error("worker %d could not start; stopping", worker.pid)
            self._status = 1
            self._stop.set()
            return
        lived = time.monotonic() - worker.started
        # Once at once; again and again soon after starting: 1, 2, 4 ... s.
        self._quick_deaths = self._quick_deaths + 1 if lived < QUICK_DEATH_SECONDS else 0
        delay = (min(2.0 ** (self._quick_deaths - 2), RESTART_DELAY_MAX)
                 if self._quick_deaths > 1 else 0.0)
        log.warning("worker %d exited with status %s after %.0f s; starting another%s",
                    worker.pid, code, lived, f" in {delay:.0f} s" if delay else "")
        if delay and self._stop.wait(delay):
            return
        self.workers[index] = self._start(worker.number)

    def _gone(self, worker: Worker) -> None:
        """A worker has exited: its live gauges no longer count (a graceful stop removes
        its own; a killed one cannot)."""
        if self._metrics is not None and worker.pid is not None:
            self._metrics.worker_died(worker.pid)

    def _retire(self, worker: Worker, grace: float) -> None:
        """Tell a worker to stop (once: a second SIGTERM would make uvicorn skip the
        graceful part); ``_reap`` kills it if it is still there after ``grace``."""
        if worker.process.is_alive() and worker.pid is not None:
            os.kill(worker.pid, signal.SIGTERM)
        self._leaving.append((worker, time.monotonic() + grace))

    def _reap(self) -> None:
        now = time.monotonic()
        for worker, deadline in list(self._leaving):
            if not worker.process.is_alive():
                worker.process.join()
                self._gone(worker)
                self._leaving.remove((worker, deadline))
            elif now > deadline and worker.pid is not None:
                log.warning("worker %d did not stop in time; killing it", worker.pid)
                os.kill(worker.pid, signal.SIGKILL)

    def _wait(self, done: Callable[[], bool]) -> bool:
        """Keep supervising until ``done()``: True, or False on a stop signal."""
        while not done():
            if self._stop.wait(POLL_SECONDS):
                return False
            self._supervise()
        return True

    # --- rolling restart --------------------------------------------------------------

    def _roll(self) -> None:
        """Replace every worker in turn: a new one ready first, then the old one gone."""
        began = time.monotonic()
        log.info("SIGHUP: restarting the %d workers one at a time", self.count)
        for index in range(self.count):
            if not self._roll_one(index):
                return
        log.info("rolling restart of %d workers done in %.1f s", self.count,
                 time.monotonic() - began)

    def _roll_one(self, index: int) -> bool:
        fresh = self._joining = self._start(index + 1)
        if not self._wait(lambda: fresh.ready or not fresh.process.is_alive()
                          or fresh.silent_for(time.monotonic()) > self._limit(fresh)):
            return False  # stopping: _stop_all stops the new one too
        self._joining = None
        if not fresh.ready:
            log.error("new worker %d did not become ready (exit status %s); rolling restart "
                      "abandoned, the other workers keep serving", fresh.pid,
                      fresh.process.exitcode)
            self._retire(fresh, HUNG_GRACE_SECONDS)
            return False
        fresh.announced = True
        old, self.workers[index] = self.workers[index], fresh
        log.info("worker %d ready after %.1f s; stopping worker %d", fresh.pid,
                 time.monotonic() - fresh.started, old.pid)
        self._retire(old, self.settings.shutdown_seconds + 5)
        return self._wait(lambda: all(worker is not old for worker, _ in self._leaving))

    # --- stopping ---------------------------------------------------------------------

    def _stop_all(self) -> None:
        """SIGTERM every worker, wait for their graceful shutdown, then kill the rest."""
        serving = [*self.workers, *([self._joining] if self._joining else [])]
        for worker in serving:
            if worker.process.is_alive() and worker.pid is not None:
                os.kill(worker.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.shutdown_seconds + 5
        for worker, until in [*((worker, deadline) for worker in serving), *self._leaving]:
            worker.process.join(max(0.0, until - time.monotonic()))
            if worker.process.is_alive():
                log.warning("worker %d did not stop in time; killing it", worker.pid)
                worker.process.kill()
                worker.process.join()
