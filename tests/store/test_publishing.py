"""Publishing posts that wait, in the store on SQLite and PostgreSQL: schedulers racing on
separate engines (as separate processes would) publish each due post exactly once, in
gapless seq, and concurrent edits of a scheduled post neither deadlock nor publish it
twice."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from bulletin.store import accounts, eventlog, publishing
from bulletin.store.db import Database
from bulletin.store.models import Editor, utcnow


async def _setup(db: Database, posts: int) -> tuple[Editor, int, list[int]]:
    async with db.write() as session:
        author = await accounts.create_editor(session, username="writer", password=None)
        stream = await eventlog.create_stream(session, slug="race", title="Race",
                                              description="", status="live")
        ids = []
        for i in range(posts):
            view, written = await eventlog.create_post(
                session, slug="race", author=author, body=f"post {i}", pinned=False,
                status="scheduled", publish_at=utcnow() - timedelta(seconds=1) +
                timedelta(milliseconds=i))
            assert written == []
            assert view.post.id is not None
            ids.append(view.post.id)
    assert stream.id is not None
    return author, stream.id, ids


async def test_racing_schedulers_publish_each_due_post_exactly_once(database_url: str) -> None:
    """Eight rounds of the scheduler on two engines at once publish twelve due posts once
    each, in the order of their times, as seq 1..12."""
    engines = [Database(database_url), Database(database_url)]
    try:
        _author, stream_id, ids = await _setup(engines[0], 12)

        async def round_(i: int) -> list[int]:
            async with engines[i % 2].write() as session:
                _slug, events = await publishing.publish_due(
                    session, stream_id=stream_id, now=utcnow())
            return [e.post_id for e in events if e.post_id is not None]

        published = [p for got in await asyncio.gather(*(round_(i) for i in range(8)))
                     for p in got]
        assert sorted(published) == ids
        async with engines[1].read() as session:
            stream = await eventlog.get_stream(session, slug="race", include_drafts=True)
            log = [json.loads(p) for p in await eventlog.events_since(
                session, stream=stream, since=0, limit=100)]
            due = await publishing.due_streams(session, now=utcnow())
        assert [(e["seq"], e["op"], e["post"]["id"]) for e in log] == [
            (n, "post.created", post_id) for n, post_id in enumerate(ids, start=1)]
        assert stream.seq == 12 and due == []
    finally:
        for engine in engines:
            await engine.dispose()


async def test_edits_racing_the_scheduler_keep_one_publication(database_url: str) -> None:
    """Edits of due scheduled posts while schedulers run finish (no deadlock) and each
    post is published exactly once, carrying the text it had when it went out."""
    engines = [Database(database_url), Database(database_url)]
    try:
        author, stream_id, ids = await _setup(engines[0], 6)

        async def scheduler(i: int) -> int:
            async with engines[i % 2].write() as session:
                _slug, events = await publishing.publish_due(
                    session, stream_id=stream_id, now=utcnow())
            return len(events)

        async def edit(i: int) -> int:
            async with engines[(i + 1) % 2].write() as session:
                _view, events = await eventlog.edit_post(
                    session, post_id=ids[i], editor=author, body=f"post {i}, corrected")
            return len(events)

        counts = await asyncio.wait_for(asyncio.gather(
            *(scheduler(i) for i in range(4)), *(edit(i) for i in range(6))), 60)
        assert sum(counts[:4]) == 6
        async with engines[0].read() as session:
            stream = await eventlog.get_stream(session, slug="race", include_drafts=True)
            log = [json.loads(p) for p in await eventlog.events_since(
                session, stream=stream, since=0, limit=100)]
        created = [e for e in log if e["op"] == "post.created"]
        assert sorted(e["post"]["id"] for e in created) == ids
        assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
        # Replays carry each post's current text, whichever came first.
        assert {e["post"]["body"] for e in created} == \
            {f"post {i}, corrected" for i in range(6)}
    finally:
        for engine in engines:
            await engine.dispose()
