"""Migrations build the schema on an empty database and agree with the models."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

from server import migrate, models


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
    from server.db import Database

    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
            mode = (await conn.execute(sa.text("PRAGMA journal_mode"))).scalar_one()
    finally:
        await db.dispose()
    assert {t.name for t in SQLModel.metadata.sorted_tables} <= tables
    assert mode == "wal"
