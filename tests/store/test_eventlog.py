"""The event log: one event per change, seq 1, 2, 3... with no gap or duplicate under load."""

from __future__ import annotations

import asyncio
import json

import pytest
import sqlalchemy as sa

from bulletin.core import protocol
from bulletin.store import accounts, eventlog
from bulletin.store.db import Database
from bulletin.store.models import Editor


async def _author(db: Database) -> Editor:
    async with db.write() as session:
        return await accounts.create_editor(session, username="writer", password=None)


async def _seqs(db: Database, slug: str) -> list[int]:
    async with db.read() as session:
        stream = await eventlog.get_stream(session, slug=slug, include_drafts=True)
        payloads = await eventlog.events_since(session, stream=stream, since=0, limit=10_000)
    return [json.loads(p)["seq"] for p in payloads]


async def test_concurrent_writers_never_share_or_skip_a_seq(database_url: str) -> None:
    """Forty writers on two separate engines (as two processes would be) make seq 1..40."""
    engines = [Database(database_url), Database(database_url)]
    try:
        author = await _author(engines[0])
        async with engines[0].write() as session:
            await eventlog.create_stream(session, slug="race", title="Race", description="",
                                      status="live")

        async def write(i: int) -> int:
            async with engines[i % 2].write() as session:
                _view, events = await eventlog.create_post(
                    session, slug="race", author=author, body=f"post {i}", pinned=False)
            return events[0].seq

        seqs = await asyncio.gather(*[write(i) for i in range(40)])
        assert sorted(seqs) == list(range(1, 41))
        assert await _seqs(engines[0], "race") == list(range(1, 41))
        async with engines[1].read() as session:
            stream = await eventlog.get_stream(session, slug="race", include_drafts=True)
        assert stream.seq == 40
    finally:
        for engine in engines:
            await engine.dispose()


async def test_concurrent_edits_of_one_post_keep_every_revision(database_url: str) -> None:
    """Simultaneous edits of one post each become a revision: 1..N, none lost or repeated."""
    db = Database(database_url)
    other = Database(database_url)
    try:
        author = await _author(db)
        async with db.write() as session:
            await eventlog.create_stream(session, slug="race", title="R", description="",
                                      status="live")
            view, _ = await eventlog.create_post(session, slug="race", author=author, body="v0",
                                              pinned=False)
        post_id = view.post.id
        assert post_id is not None

        async def edit(i: int) -> None:
            async with (db if i % 2 else other).write() as session:
                await eventlog.edit_post(session, post_id=post_id, editor=author, body=f"v{i + 1}")

        await asyncio.gather(*[edit(i) for i in range(10)])
        async with db.read() as session:
            revisions = await eventlog.post_revisions(session, post_id=post_id)
            final = await eventlog.get_post(session, post_id=post_id, include_drafts=True)
        assert [r.revision for r in revisions] == list(range(1, 11))
        assert final.post.revision == 11
        assert await _seqs(db, "race") == list(range(1, 12))
    finally:
        await db.dispose()
        await other.dispose()


async def test_edits_from_one_revision_on_two_engines_make_one_change(
        database_url: str) -> None:
    """Edits that expect revision 1, sent at once from two engines (as two processes
    would), make one change; every other raises StaleRevision with the winner's text, and
    a deletion that expects revision 1 then deletes nothing."""
    db = Database(database_url)
    other = Database(database_url)
    try:
        author = await _author(db)
        async with db.write() as session:
            await eventlog.create_stream(session, slug="race", title="R", description="",
                                         status="live")
            view, _ = await eventlog.create_post(session, slug="race", author=author, body="v0",
                                                 pinned=False)
        post_id = view.post.id
        assert post_id is not None

        async def edit(i: int) -> str:
            try:
                async with (db if i % 2 else other).write() as session:
                    await eventlog.edit_post(session, post_id=post_id, editor=author,
                                             body=f"v{i + 1}", expected_revision=frozenset({1}))
            except eventlog.StaleRevision as stale:
                return f"stale at {stale.current['revision']}: {stale.current['body']}"
            return f"saved v{i + 1}"

        outcomes = await asyncio.gather(*[edit(i) for i in range(6)])
        saved = [o for o in outcomes if o.startswith("saved")]
        assert len(saved) == 1
        winner = saved[0].removeprefix("saved ")
        assert sorted(outcomes) == sorted([saved[0]] + [f"stale at 2: {winner}"] * 5)
        with pytest.raises(eventlog.StaleRevision):
            async with db.write() as session:
                await eventlog.delete_post(session, post_id=post_id, editor=author,
                                           expected_revision=frozenset({1}))
        async with db.read() as session:
            final = await eventlog.get_post(session, post_id=post_id, include_drafts=True)
        assert (final.post.body, final.post.revision, final.post.deleted_at) == (winner, 2, None)
        assert await _seqs(db, "race") == [1, 2]
    finally:
        await db.dispose()
        await other.dispose()


async def test_a_rolled_back_write_leaves_no_gap(database_url: str) -> None:
    """A transaction that fails after taking a seq gives it back: the next write gets it."""
    db = Database(database_url)
    try:
        author = await _author(db)
        async with db.write() as session:
            await eventlog.create_stream(session, slug="s", title="S", description="",
                                      status="live")
        with pytest.raises(RuntimeError):
            async with db.write() as session:
                await eventlog.create_post(session, slug="s", author=author, body="lost",
                                        pinned=False)
                raise RuntimeError("crash after the event was written")
        async with db.write() as session:
            _view, events = await eventlog.create_post(session, slug="s", author=author,
                                                    body="kept", pinned=False)
        assert events[0].seq == 1
        assert await _seqs(db, "s") == [1]
        async with db.read() as session:
            count = (await session.exec(sa.text("SELECT count(*) FROM posts"))).one()
        assert tuple(count) == (1,)
    finally:
        await db.dispose()


async def test_each_stream_has_its_own_sequence(database_url: str) -> None:
    """Two streams written in turn each number their events from 1."""
    db = Database(database_url)
    try:
        author = await _author(db)
        async with db.write() as session:
            for slug in ("a", "b"):
                await eventlog.create_stream(session, slug=slug, title=slug, description="",
                                          status="live")
        for i in range(3):
            for slug in ("a", "b"):
                async with db.write() as session:
                    await eventlog.create_post(session, slug=slug, author=author, body=str(i),
                                            pinned=False)
        assert await _seqs(db, "a") == [1, 2, 3]
        assert await _seqs(db, "b") == [1, 2, 3]
    finally:
        await db.dispose()


async def test_duplicate_seq_is_refused_by_the_database(database_url: str) -> None:
    """The unique (stream, seq) constraint backs the guarantee even against buggy code."""
    db = Database(database_url)
    try:
        author = await _author(db)
        async with db.write() as session:
            stream = await eventlog.create_stream(session, slug="s", title="S", description="",
                                               status="live")
            await eventlog.create_post(session, slug="s", author=author, body="x", pinned=False)
        with pytest.raises(sa.exc.IntegrityError):
            async with db.write() as session:
                await session.exec(sa.text(
                    "INSERT INTO events (stream_id, seq, op, payload, created_at) "
                    "VALUES (:s, 1, 'post.created', '{}', CURRENT_TIMESTAMP)"
                ).bindparams(s=stream.id))
    finally:
        await db.dispose()


# --- a post's history carries its current state ------------------------------------------


async def _log(db: Database, slug: str) -> list[str]:
    async with db.read() as session:
        stream = await eventlog.get_stream(session, slug=slug, include_drafts=True)
        return await eventlog.events_since(session, stream=stream, since=0, limit=10_000)


async def test_a_correction_restates_every_earlier_event_of_the_post(database_url: str) -> None:
    """After an edit, each event of the post keeps its seq, op and time but carries the
    corrected post, byte for byte what protocol.restate makes; other posts are untouched
    and the old text survives only in the revisions."""
    db = Database(database_url)
    try:
        author = await _author(db)
        async with db.write() as session:
            await eventlog.create_stream(session, slug="s", title="S", description="",
                                      status="live")
            named, _ = await eventlog.create_post(
                session, slug="s", author=author, body="Witness **Jane Roe** saw it",
                pinned=False)
            await eventlog.create_post(session, slug="s", author=author, body="Other news",
                                    pinned=False)
        assert named.post.id is not None
        async with db.write() as session:
            await eventlog.edit_post(session, post_id=named.post.id, editor=author, pinned=True)
        before = await _log(db, "s")
        async with db.write() as session:
            view, _ = await eventlog.edit_post(session, post_id=named.post.id, editor=author,
                                            body="A witness saw it")
        after = await _log(db, "s")
        assert "Jane Roe" not in "".join(after)
        current = view.to_json()
        assert [json.loads(p)["post"] for p in after] == [current, json.loads(before[1])["post"],
                                                           current, current]
        assert [{k: v for k, v in json.loads(p).items() if k != "post"} for p in after[:3]] == [
            {k: v for k, v in json.loads(p).items() if k != "post"} for p in before]
        assert after[0] == protocol.restate(before[0], current)
        assert after[1] == before[1]
        assert json.loads(after[3])["op"] == "post.edited"
        async with db.read() as session:
            revisions = await eventlog.post_revisions(session, post_id=named.post.id)
        assert [r.body for r in revisions] == ["Witness **Jane Roe** saw it"]
    finally:
        await db.dispose()


async def test_a_deletion_leaves_only_the_tombstone_in_the_log(database_url: str) -> None:
    """After a delete, every event of the post (created, edited, pinned) carries the
    tombstone: no body, no html, no embeds, deleted true."""
    db = Database(database_url)
    try:
        author = await _author(db)
        async with db.write() as session:
            await eventlog.create_stream(session, slug="s", title="S", description="",
                                      status="live")
            view, _ = await eventlog.create_post(
                session, slug="s", author=author,
                body="A defamatory claim\n\nhttps://www.youtube.com/watch?v=dQw4w9WgXcQ",
                pinned=True)
        assert view.post.id is not None and view.post.embeds
        async with db.write() as session:
            await eventlog.edit_post(session, post_id=view.post.id, editor=author,
                                  body="A defamatory claim, restated")
        async with db.write() as session:
            gone, _ = await eventlog.delete_post(session, post_id=view.post.id, editor=author)
        log = [json.loads(p) for p in await _log(db, "s")]
        assert [e["op"] for e in log] == ["post.created", "post.edited", "post.deleted"]
        assert all(e["post"] == gone.to_json() for e in log)
        assert log[0]["post"]["body"] is None and log[0]["post"]["html"] is None
        assert log[0]["post"]["embeds"] == [] and log[0]["post"]["deleted"] is True
        assert "defamatory" not in json.dumps(log) and "dQw4w9WgXcQ" not in json.dumps(log)
    finally:
        await db.dispose()


async def test_text_changed_in_a_draft_is_gone_from_the_log_when_it_goes_live(
    database_url: str,
) -> None:
    """Corrections and deletions made while the stream was a draft leave the log clean
    before it goes live: its first public replay holds no earlier text."""
    db = Database(database_url)
    try:
        author = await _author(db)
        async with db.write() as session:
            await eventlog.create_stream(session, slug="s", title="S", description="",
                                      status="draft")
            wrong, _ = await eventlog.create_post(session, slug="s", author=author,
                                               body="Named: Jane Roe", pinned=False)
            bad, _ = await eventlog.create_post(session, slug="s", author=author,
                                             body="Unchecked rumour", pinned=False)
        assert wrong.post.id is not None and bad.post.id is not None
        async with db.write() as session:
            await eventlog.edit_post(session, post_id=wrong.post.id, editor=author,
                                  body="Named: a witness")
            await eventlog.delete_post(session, post_id=bad.post.id, editor=author)
        async with db.write() as session:
            await eventlog.update_stream(session, slug="s", status="live")
        log = "".join(await _log(db, "s"))
        assert "Jane Roe" not in log and "rumour" not in log
        assert "Named: a witness" in log
    finally:
        await db.dispose()
