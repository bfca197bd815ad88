"""Photo processing in worker processes (web/imaging.py): out of the server's process, at
idle priority, bounded, and surviving a worker that dies."""

from __future__ import annotations

import asyncio
import io
import os
import time
from pathlib import Path

import pytest
from PIL import Image

from bulletin.core import images
from bulletin.web.imaging import ImageWorkers

pytestmark = pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling")


def jpeg(width: int = 640, height: int = 480) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(out, "JPEG", quality=90)
    return out.getvalue()


def children() -> set[int]:
    """The live child processes of this process, but multiprocessing's resource tracker."""
    found: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if b"resource_tracker" not in command:
                found.add(int(pid))
    return found


# What the workers run in these tests: importable by the spawned processes.


def slow(data: bytes, *, max_pixels: int) -> images.ProcessedImage:
    """Sleeps the seconds written in ``data``, then notes its label in the file named after
    them (``b"seconds [file label]"``), and answers with its own pid as width."""
    seconds, *noted = data.decode().split()
    time.sleep(float(seconds))
    if noted:
        with open(noted[0], "a") as out:
            out.write(f"{noted[1]}\n")
    return images.ProcessedImage(os.getpid(), 1, "image/jpeg", ())


def crashing(data: bytes, *, max_pixels: int) -> images.ProcessedImage:
    """Dies as a decoder crashing on hostile bytes would, for ``b"crash"``; else ``slow``."""
    if data == b"crash":
        os._exit(70)
    return slow(data, max_pixels=max_pixels)


async def test_a_photo_is_processed_in_an_idle_priority_process_as_in_this_one() -> None:
    """The variants are the ones core.images makes here, byte for byte, but made by another
    process, which runs in the idle scheduling class."""
    data = jpeg(1200, 900)
    workers = ImageWorkers(2)
    before = children()
    try:
        made = await workers.process(data, max_pixels=50_000_000)
        started = children() - before
        policies = {os.sched_getscheduler(pid) for pid in started}
    finally:
        await workers.close()
    assert made == images.process(data, max_pixels=50_000_000)
    assert [v.width for v in made.variants] == [480, 480, 960, 960, 1200, 1200]
    assert started, "no worker process was started"
    assert policies == {os.SCHED_IDLE}
    assert not children() & started, "close() left worker processes running"


async def test_a_refusal_in_the_worker_reaches_the_caller_whole() -> None:
    workers = ImageWorkers(1)
    try:
        with pytest.raises(images.ImageRefused) as refused:
            await workers.process(b"<svg xmlns='http://www.w3.org/2000/svg'/>",
                                  max_pixels=1000)
        with pytest.raises(images.ImageRefused) as bomb:
            await workers.process(jpeg(200, 100), max_pixels=1000)
    finally:
        await workers.close()
    assert (refused.value.status, refused.value.code) == (415, "unsupported_image")
    assert (bomb.value.status, bomb.value.code) == (413, "too_many_pixels")
    assert "over the limit of 1000 pixels" in bomb.value.message


async def test_no_more_photos_than_workers_are_processed_at_once() -> None:
    workers = ImageWorkers(2, process=slow)
    try:
        await workers.process(b"0", max_pixels=1)  # the processes are started
        started = time.monotonic()
        made = await asyncio.gather(*(workers.process(b"0.6", max_pixels=1)
                                      for _ in range(4)))
        took = time.monotonic() - started
    finally:
        await workers.close()
    assert len({m.width for m in made}) == 2  # two processes did the four
    assert took >= 1.2  # two rounds of 0.6 s: never three or four at once


async def test_a_photo_whose_request_went_away_keeps_its_turn_until_it_is_done(
        tmp_path: Path) -> None:
    """Abandoned uploads cannot pile work up past the bound: while the abandoned photo is
    processed, the photos after it wait for their turn, and those abandoned meanwhile are
    never processed at all."""
    ran = tmp_path / "ran"
    workers = ImageWorkers(1, process=slow)
    try:
        await workers.process(b"0", max_pixels=1)
        started = time.monotonic()
        for n in range(3):
            abandoned = asyncio.create_task(
                workers.process(f"0.6 {ran} abandoned-{n}".encode(), max_pixels=1))
            await asyncio.sleep(0.1)
            abandoned.cancel()
            with pytest.raises(asyncio.CancelledError):
                await abandoned
        await workers.process(f"0 {ran} last".encode(), max_pixels=1)
        waited = time.monotonic() - started
    finally:
        await workers.close()
    assert ran.read_text().split() == ["abandoned-0", "last"]
    assert waited >= 0.6


async def test_a_worker_that_dies_fails_its_photo_only_and_the_pool_is_replaced() -> None:
    """The photo that killed its worker (twice) is refused; the photo that was in the pool
    beside it is processed again in the new pool, and later photos are processed."""
    workers = ImageWorkers(2, process=crashing)
    try:
        beside = asyncio.create_task(workers.process(b"0.5", max_pixels=1))
        await asyncio.sleep(0.1)
        with pytest.raises(images.ImageRefused) as refused:
            await workers.process(b"crash", max_pixels=1)
        assert (await beside).width > 0
        after = await workers.process(b"0", max_pixels=1)
    finally:
        await workers.close()
    assert (refused.value.status, refused.value.code) == (422, "image_processing_failed")
    assert after.width not in children()  # the pool's processes are gone after close()


async def test_closed_workers_take_no_more_photos() -> None:
    workers = ImageWorkers(1)
    await workers.close()
    with pytest.raises(RuntimeError, match="closed"):
        await workers.process(jpeg(), max_pixels=50_000_000)
