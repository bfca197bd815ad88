"""Photo processing in worker processes at idle priority, so that no upload delays a delivery.

Pillow's encoders hold the interpreter lock for tens of milliseconds at a time (a 2,400 px
progressive JPEG, ~60 ms), so processing in a thread of the server's process held up its
event loop: with ten 12-megapixel uploads, the p99 of live deliveries was seven times that
of the same run without them (``bench/uploads_latency.py``). In processes of their own the
photos cannot take the lock, and at Linux's idle scheduling class (``SCHED_IDLE``; nice 19
where that does not exist) they only get the processor time that serving leaves over: a
busy server delays a photo, never the other way round.

- At most ``workers`` photos are processed at once, per server process; the others wait
  their turn. A request that goes away (the client closed it) keeps its turn until its
  photo is done, so that abandoned uploads cannot pile work up behind the bound.
- The processes are started on first use (an instance that never takes an upload starts
  none), by ``spawn``: nothing of the server's state, sockets or threads is copied into
  them. (They are not recycled with ``max_tasks_per_child``, which can deadlock the pool
  on Python 3.11 to 3.13: CPython gh-115634.)
- A worker that dies (killed for its memory, a decoder crashing on hostile bytes) fails
  every photo in its pool; the pool is replaced, and each of those photos is tried once
  more in a process of its own, so that the one that kills its worker again takes no
  other along. It is refused (422 ``image_processing_failed``), and the server goes on.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing.context
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from ..core import images

log = logging.getLogger("bulletin.media")

Process = Callable[..., images.ProcessedImage]


def lower_priority(pid: int) -> None:
    """Run the process only on processor time nothing else wants."""
    try:
        os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux: the lowest priority instead
        try:
            os.setpriority(os.PRIO_PROCESS, pid, 19)
        except OSError:
            pass


class _IdleProcess(multiprocessing.context.SpawnProcess):
    """A worker lowered by the server as soon as it exists, so that its interpreter's
    start (~0.2 s of CPU) already runs at idle priority."""

    def start(self) -> None:
        super().start()
        if self.pid is not None:
            lower_priority(self.pid)


class _IdleContext(multiprocessing.context.SpawnContext):
    Process = _IdleProcess


class ImageWorkers:
    """The worker processes for photo processing; one per server process, built by the
    app's lifespan and closed by it."""

    def __init__(self, workers: int, *, process: Process = images.process) -> None:
        if workers < 1:
            raise ValueError(f"media_workers must be at least 1, got {workers}")
        self.workers = workers
        self._process = process
        self._slots = asyncio.Semaphore(workers)
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    async def process(self, data: bytes, *, max_pixels: int) -> images.ProcessedImage:
        """``core.images.process`` in a worker; raises its ImageRefused."""
        await self._slots.acquire()
        turn = _Turn(self._slots)
        try:
            pool = self._current()
            try:
                return await turn.wait(pool.submit(self._process, data, max_pixels=max_pixels))
            except BrokenProcessPool:
                self._replace(pool)
                log.warning("a photo processing worker died; its photos are tried again, "
                            "each in a process of its own")
            # Alone, so that a photo that kills its worker again takes no other photo along.
            alone = self._new_pool(1)
            try:
                return await turn.wait(alone.submit(self._process, data, max_pixels=max_pixels))
            except BrokenProcessPool:
                raise images.ImageRefused(
                    "image_processing_failed",
                    "processing this image stopped its worker twice: it cannot be used",
                    422) from None
            finally:
                alone.shutdown(wait=False)
        finally:
            turn.end()

    async def close(self) -> None:
        """Wait for the photos in progress, then stop the processes."""
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)

    def _current(self) -> ProcessPoolExecutor:
        if self._closed:
            raise RuntimeError("the image workers are closed")
        if self._pool is None:
            self._pool = self._new_pool(self.workers)
        return self._pool

    @staticmethod
    def _new_pool(workers: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=workers, mp_context=_IdleContext())

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        if self._pool is broken:
            self._pool = None
            broken.shutdown(wait=False, cancel_futures=True)


class _Turn:
    """One photo's place among the ``workers`` processed at once. It ends when the photo's
    processing does, not when the request waiting for it goes away."""

    def __init__(self, slots: asyncio.Semaphore) -> None:
        self._slots = slots
        self._held = True

    async def wait(self, future: Future[images.ProcessedImage]) -> images.ProcessedImage:
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            # The worker goes on with the photo: the turn ends when the photo does.
            self._held = False
            loop = asyncio.get_running_loop()

            def release(_: Future[images.ProcessedImage]) -> None:
                try:
                    loop.call_soon_threadsafe(self._slots.release)
                except RuntimeError:  # the loop is closed: so is every waiter
                    pass

            future.add_done_callback(release)
            raise

    def end(self) -> None:
        if self._held:
            self._held = False
            self._slots.release()
