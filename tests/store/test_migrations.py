"""Migrations build the schema on an empty database, agree with the models, scrub old
event history (0003) and carry tokens and editors into scopes and roles (0009), on SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

from alembic import command
from bulletin.core import access, protocol
from bulletin.core.access import Act
from bulletin.store import accounts, auth, migrate, models
from bulletin.store.db import Database
from bulletin.store.payloads import encode, event_json, stream_json


async def test_migrations_match_the_models(database_url: str) -> None:
    """Autogenerate finds no difference between the migrated database and the models."""
    assert models.Stream.__tablename__ == "streams"
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(lambda c: compare_metadata(
                MigrationContext.configure(c, opts={"compare_type": True}), SQLModel.metadata))
            version = (await conn.execute(sa.text("SELECT version_num FROM alembic_version")))
            assert version.scalar_one() == migrate.current_head()
    finally:
        await engine.dispose()
    assert diff == []


async def test_upgrade_on_an_empty_sqlite_file_creates_every_table(tmp_path: object) -> None:
    """`upgrade` on a new SQLite file creates all tables in WAL mode, and is repeatable."""
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    await asyncio.to_thread(migrate.upgrade, url)  # a second run is a no-op
    from bulletin.store.db import Database

    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
            mode = (await conn.execute(sa.text("PRAGMA journal_mode"))).scalar_one()
    finally:
        await db.dispose()
    assert {t.name for t in SQLModel.metadata.sorted_tables} <= tables
    assert mode == "wal"


# --- 0003: past events restated to each post's current state ---------------------------


def _revision_0003() -> Any:
    path = Path(migrate.SCRIPT_LOCATION) / "versions" / "0003_restate_post_history.py"
    spec = importlib.util.spec_from_file_location("revision_0003", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _post(post_id: int, body: str | None, *, revision: int = 1, pinned: bool = False,
          deleted: bool = False) -> dict[str, Any]:
    return {"id": post_id, "stream": "s", "author": None, "body": body,
            "html": None if body is None else f"<p>{body}</p>", "embeds": [],
            "pinned": pinned, "revision": revision, "created_at": "2026-11-25T10:00:00.000Z",
            "edited_at": None, "deleted_at": "2026-11-25T11:00:00.000Z" if deleted else None,
            "deleted": deleted}


# The history an older server wrote: every event with the post as it was then.
DIRTY = [  # (post id, op, post state)
    (1, "post.created", _post(1, "Witness Jane Roe saw it")),
    (2, "post.created", _post(2, "An unchecked rumour")),
    (1, "post.edited", _post(1, "A witness saw it", revision=2)),
    (3, "post.created", _post(3, "Untouched")),
    (None, "stream.updated", None),
    (2, "post.pinned", _post(2, "An unchecked rumour", pinned=True)),
    (2, "post.deleted", _post(2, None, deleted=True)),
    (4, "post.created", _post(4, "Key moment")),
    (4, "post.pinned", _post(4, "Key moment", pinned=True)),
]


async def _write_dirty_history(url: str) -> list[str]:
    db = Database(url)
    now = models.utcnow()
    try:
        async with db.write() as session:
            stream = models.Stream(slug="s", title="S", description="", status="live",
                                   seq=len(DIRTY), created_at=now, updated_at=now)
            session.add(stream)
            await session.flush()
            assert stream.id is not None
            # The columns posts had at 0002, and only these (the model has more, with
            # defaults that a Core insert of the model would name).
            posts_0002 = sa.table("posts", *(sa.column(name) for name in (
                "id", "stream_id", "body", "html", "embeds", "pinned", "revision",
                "created_at")))
            await session.exec(sa.insert(posts_0002).values([
                {"id": number, "stream_id": stream.id, "body": "-", "html": "-",
                 "embeds": "[]", "pinned": False, "revision": 1,
                 "created_at": now.replace(tzinfo=None) if "sqlite" in url else now}
                for number in (1, 2, 3, 4)]))
            await session.flush()
            payloads = []
            for seq, (post_id, op, post) in enumerate(DIRTY, start=1):
                subject = post if post is not None else stream_json(stream)
                payload = encode(event_json(stream_slug="s", seq=seq, op=op, at=now,
                                            subject=subject))
                payloads.append(payload)
                session.add(models.Event(stream_id=stream.id, seq=seq, op=op, post_id=post_id,
                                         payload=payload, created_at=now))
        return payloads
    finally:
        await db.dispose()


async def _stored_log(url: str) -> list[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(sa.text("SELECT payload FROM events ORDER BY seq"))
            return [row[0] for row in rows]
    finally:
        await engine.dispose()


async def test_0003_restates_dirty_history_with_each_posts_newest_state(
    database_url: str,
) -> None:
    """On a log written before 0003, every earlier event of a post with several events
    takes the post of its newest one (seq, op and time kept); single-event posts and
    stream events keep their bytes, and no corrected or deleted text is left."""
    config = migrate.alembic_config(database_url)
    await asyncio.to_thread(command.downgrade, config, "0002")
    try:
        before = await _write_dirty_history(database_url)
        await asyncio.to_thread(migrate.upgrade, database_url)
    finally:
        await asyncio.to_thread(migrate.upgrade, database_url)
    after = await _stored_log(database_url)
    newest = {post_id: post for post_id, _op, post in DIRTY if post is not None}
    expected = [before[i] if post_id is None else protocol.restate(before[i], newest[post_id])
                for i, (post_id, _op, _post_state) in enumerate(DIRTY)]
    assert after == expected
    assert [json.loads(p)["post"] for p in after[:3]] == [newest[1], newest[2], newest[1]]
    assert after[3] == before[3] and after[4] == before[4]
    assert json.loads(after[7])["post"]["pinned"] is True
    for old, new in zip(before, after, strict=True):
        old_event, new_event = json.loads(old), json.loads(new)
        old_event.pop("post", None)
        new_event.pop("post", None)
        assert old_event == new_event
    text = "".join(after)
    assert "Jane Roe" not in text and "rumour" not in text


@pytest.mark.parametrize("payload, post", [
    ('{"type":"event","seq":1,"op":"post.created","post":{"id":1,"body":"é","revision":1}}',
     {"id": 1, "body": "ü", "revision": 2, "deleted": False}),
    ('{"type":"event","seq":1,"op":"post.created","post":{"id":1,"revision":3}}',
     {"id": 1, "body": "older", "revision": 2, "deleted": False}),
    ('{"type":"event","seq":2,"op":"post.deleted","post":{"id":1,"deleted":true}}',
     {"id": 1, "body": "back?", "revision": 9, "deleted": False}),
    ('{"type":"event","seq":3,"op":"stream.updated","stream_info":{"title":"T"}}',
     {"id": 1, "body": "x", "revision": 1, "deleted": False}),
])
def test_0003_restates_exactly_as_the_server_does(payload: str, post: dict[str, Any]) -> None:
    """The migration's frozen copy of the restating gives the bytes protocol.restate gives."""
    assert _revision_0003()._restate(payload, post) == protocol.restate(payload, post)


async def test_0008_keeps_posts_and_gives_them_no_headline_tags_or_bylines(
    database_url: str,
) -> None:
    """A database with posts at 0007 upgrades with every post kept: no headline, no tags,
    no contributors, in posts and revisions alike; the people directory starts empty."""
    config = migrate.alembic_config(database_url)
    await asyncio.to_thread(command.downgrade, config, "0007")
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(
                "INSERT INTO streams (id, slug, title, description, status, seq, created_at,"
                " updated_at) VALUES (1, 's', 'S', '', 'live', 0, :t, :t)"),
                {"t": models.utcnow().replace(tzinfo=None)})
            await conn.execute(sa.text(
                "INSERT INTO posts (id, stream_id, body, html, embeds, media, pinned, revision,"
                " created_at) VALUES (7, 1, 'Old text', '<p>Old text</p>', '[]', '[]', :f, 2,"
                " :t)"), {"t": models.utcnow().replace(tzinfo=None), "f": False})
            await conn.execute(sa.text(
                "INSERT INTO post_revisions (post_id, revision, body, html, media, replaced_at)"
                " VALUES (7, 1, 'Older', '<p>Older</p>', '[]', :t)"),
                {"t": models.utcnow().replace(tzinfo=None)})
        await asyncio.to_thread(migrate.upgrade, database_url)
        async with engine.connect() as conn:
            post = (await conn.execute(sa.text(
                "SELECT body, headline, tags, contributors FROM posts WHERE id = 7"))).one()
            revision = (await conn.execute(sa.text(
                "SELECT body, headline, tags, contributors FROM post_revisions"))).one()
            people = (await conn.execute(sa.text("SELECT count(*) FROM people"))).scalar_one()
    finally:
        await asyncio.to_thread(migrate.upgrade, database_url)
        await engine.dispose()
    assert (post[0], post[1], json.loads(post[2]) if isinstance(post[2], str) else post[2],
            json.loads(post[3]) if isinstance(post[3], str) else post[3]) == \
        ("Old text", "", [], [])
    assert (revision[0], revision[1]) == ("Older", "")
    assert people == 0


# --- 0009: token scopes, streams and expiry; the contributor role ------------------------


async def _execute(url: str, *statements: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            results = []
            for sql in statements:
                result = await conn.execute(sa.text(sql))
                results.append(result.all() if result.returns_rows else None)
            return results
    finally:
        await engine.dispose()


async def test_0009_keeps_existing_tokens_working_as_write_everywhere_forever(
    database_url: str,
) -> None:
    """Tokens and editors stored before 0009 come through it: each token is write, bound to
    no stream, never expires and still finds its editor; contributors can then be stored."""
    config = migrate.alembic_config(database_url)
    await asyncio.to_thread(command.downgrade, config, "0007")
    try:
        await _execute(
            database_url,
            "INSERT INTO editors (username, display_name, role, disabled, created_at) "
            "VALUES ('ada', 'Ada', 'admin', false, '2026-11-25 10:00:00'), "
            "('bob', 'Bob', 'editor', false, '2026-11-25 10:00:00')",
            "INSERT INTO api_tokens (editor_id, name, token_hash, prefix, created_at, "
            "revoked_at) SELECT id, CASE WHEN role = 'admin' THEN 'cms' ELSE 'old' END, "
            f"CASE WHEN role = 'admin' THEN '{auth.token_hash('blt_ada')}' "
            f"ELSE '{auth.token_hash('blt_bob')}' END, 'blt_' || username, "
            "created_at, CASE WHEN role = 'admin' THEN NULL ELSE created_at END "
            "FROM editors ORDER BY id")
        with pytest.raises(sa.exc.IntegrityError):  # before 0009: no such role
            await _execute(database_url, "INSERT INTO editors (username, display_name, role, "
                           "disabled, created_at) VALUES ('cora', 'Cora', 'contributor', "
                           "false, '2026-11-25 10:00:00')")
        await asyncio.to_thread(migrate.upgrade, database_url)
        (rows,) = await _execute(database_url, "SELECT name, scope, streams, expires_at, "
                                 "revoked_at IS NOT NULL FROM api_tokens ORDER BY id")
        assert [tuple(r) for r in rows] == [("cms", "write", None, None, False),
                                           ("old", "write", None, None, True)]
        db = Database(database_url)
        try:
            async with db.write() as session:
                found = await accounts.editor_for_token(session, plain="blt_ada")
                assert found is not None and found[0].username == "ada"
                grant = accounts.token_grant(found[1], found[0])
                assert grant == access.Grant(role="admin", scope="write", streams=None)
                assert grant.allows(Act.CREATE_STREAM) and not grant.allows(Act.ADMIN)
                assert await accounts.editor_for_token(session, plain="blt_bob") is None
                cora = await accounts.create_editor(session, username="cora",
                                                    password="a long password", role="contributor")
                await accounts.create_token(session, editor=cora, name="field", scope="read",
                                            streams=[], expires_in=timedelta(days=1))
        finally:
            await db.dispose()
        with pytest.raises(sa.exc.IntegrityError):
            await _execute(database_url, "UPDATE api_tokens SET scope = 'root'")
    finally:
        await asyncio.to_thread(migrate.upgrade, database_url)


async def test_0009_downgrade_refuses_to_widen_a_token_or_drop_a_contributor(
    database_url: str,
) -> None:
    """The downgrade refuses while a contributor exists, then while an unrevoked token is
    narrower than write-everywhere-forever; once they are gone it goes through, keeping
    the other tokens, and the roles are admin and editor again."""
    db = Database(database_url)
    try:
        async with db.write() as session:
            ada = await accounts.create_editor(session, username="ada",
                                               password="a long password", role="admin")
            await accounts.create_editor(session, username="cora",
                                         password="a long password", role="contributor")
            await accounts.create_token(session, editor=ada, name="plain")
            narrow, _plain = await accounts.create_token(session, editor=ada, name="narrow",
                                                         scope="read")
            narrow_id = narrow.id
    finally:
        await db.dispose()
    config = migrate.alembic_config(database_url)
    try:
        # From 0009 itself: later revisions have nothing to refuse here.
        await asyncio.to_thread(command.downgrade, config, "0009")
        with pytest.raises(RuntimeError, match="1 editors are contributors"):
            await asyncio.to_thread(command.downgrade, config, "0007")
        await _execute(database_url, "DELETE FROM editors WHERE role = 'contributor'")
        with pytest.raises(RuntimeError, match="1 unrevoked API tokens"):
            await asyncio.to_thread(command.downgrade, config, "0007")
        assert await _execute(database_url, "SELECT version_num FROM alembic_version") == [
            [("0009",)]]
        await _execute(database_url, "UPDATE api_tokens SET revoked_at = created_at "
                       f"WHERE id = {narrow_id}")
        await asyncio.to_thread(command.downgrade, config, "0007")
        (rows,) = await _execute(database_url, "SELECT name FROM api_tokens ORDER BY id")
        assert [r[0] for r in rows] == ["plain", "narrow"]
        with pytest.raises(sa.exc.IntegrityError):
            await _execute(database_url, "UPDATE editors SET role = 'contributor'")
    finally:
        await asyncio.to_thread(migrate.upgrade, database_url)


async def test_0010_makes_every_post_published_and_refuses_to_drop_waiting_ones(
    database_url: str,
) -> None:
    """A database with posts at 0009 upgrades with each post published (no time, no note);
    the downgrade refuses while a post waits, with a message saying so, and then works."""
    config = migrate.alembic_config(database_url)
    await asyncio.to_thread(command.downgrade, config, "0009")
    engine = create_async_engine(database_url)
    now = {"t": models.utcnow().replace(tzinfo=None), "f": False}
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(
                "INSERT INTO streams (id, slug, title, description, status, seq, created_at,"
                " updated_at) VALUES (1, 's', 'S', '', 'live', 1, :t, :t)"), now)
            await conn.execute(sa.text(
                "INSERT INTO posts (id, stream_id, body, html, embeds, media, pinned, revision,"
                " created_at, headline, tags, contributors) VALUES (7, 1, 'Old text',"
                " '<p>Old text</p>', '[]', '[]', :f, 1, :t, '', '[]', '[]')"), now)
        await asyncio.to_thread(migrate.upgrade, database_url)
        async with engine.begin() as conn:
            post = (await conn.execute(sa.text(
                "SELECT body, status, publish_at, note FROM posts WHERE id = 7"))).one()
            await conn.execute(sa.text(
                "INSERT INTO editors (id, username, display_name, role, disabled, created_at)"
                " VALUES (5, 'carol', 'Carol', 'contributor', :f, :t)"), now)
            await conn.execute(sa.text(
                "INSERT INTO posts (id, stream_id, author_id, body, html, embeds, media,"
                " pinned, revision, created_at, headline, tags, contributors, status, note)"
                " VALUES (8, 1, 5, 'Waiting', '<p>Waiting</p>', '[]', '[]', :f, 1, :t, '',"
                " '[]', '[]', 'submitted', '')"), now)
        with pytest.raises(RuntimeError, match="1 posts are not published"):
            await asyncio.to_thread(command.downgrade, config, "0009")
        async with engine.begin() as conn:
            await conn.execute(sa.text("UPDATE posts SET deleted_at = :t WHERE id = 8"), now)
        await asyncio.to_thread(command.downgrade, config, "0009")
        async with engine.connect() as conn:
            columns = await conn.run_sync(
                lambda c: {col["name"] for col in sa.inspect(c).get_columns("posts")})
            kept = (await conn.execute(sa.text("SELECT count(*) FROM posts"))).scalar_one()
    finally:
        await asyncio.to_thread(migrate.upgrade, database_url)
        await engine.dispose()
    assert tuple(post) == ("Old text", "published", None, "")
    assert "status" not in columns and kept == 2


async def test_0011_adds_drafts_and_downgrading_removes_only_them(database_url: str) -> None:
    """0011 upgrades from 0010 with a drafts table; downgrading to 0010 drops it and keeps
    the streams, and upgrading again gives an empty one."""
    config = migrate.alembic_config(database_url)
    engine = create_async_engine(database_url)
    now = models.utcnow().replace(tzinfo=None)

    async def tables() -> set[str]:
        async with engine.connect() as conn:
            return await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))

    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(
                "INSERT INTO streams (id, slug, title, description, status, seq, created_at,"
                " updated_at) VALUES (1, 's', 'S', '', 'live', 0, :t, :t)"), {"t": now})
            await conn.execute(sa.text(
                "INSERT INTO editors (id, username, display_name, role, disabled, created_at)"
                " VALUES (1, 'ada', 'Ada', 'editor', :f, :t)"), {"t": now, "f": False})
            await conn.execute(sa.text(
                "INSERT INTO drafts (editor_id, stream_id, body, pinned, headline, tags,"
                " contributors, media, uploading, key, version, updated_at) VALUES"
                " (1, 1, 'Half a post', :f, '', '[]', '[]', '[]', '[]', 'k', 1, :t)"),
                {"t": now, "f": False})
        await asyncio.to_thread(command.downgrade, config, "0010")
        assert "drafts" not in await tables()
        async with engine.connect() as conn:
            slugs = (await conn.execute(sa.text("SELECT slug FROM streams"))).scalars().all()
        assert slugs == ["s"]
        await asyncio.to_thread(migrate.upgrade, database_url)
        async with engine.connect() as conn:
            count = (await conn.execute(sa.text("SELECT count(*) FROM drafts"))).scalar_one()
        assert count == 0
    finally:
        await asyncio.to_thread(migrate.upgrade, database_url)
        await engine.dispose()
