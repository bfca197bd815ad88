"""Apply Alembic migrations from code (the CLI and tests), with the repository's scripts."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic.config import Config

from alembic import command

from .db import secure_sqlite_file

# alembic/ lives beside the server package in the source tree; server/migrations links to
# it, so that a built wheel carries the migrations inside the package.
SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """An Alembic config for this database, independent of the working directory."""
    if not (SCRIPT_LOCATION / "env.py").exists():
        raise FileNotFoundError(
            f"migration scripts not found at {SCRIPT_LOCATION}; "
            "install Bulletin from its source tree (pip install -e .)")
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logging"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database schema up to ``revision``.

    Alembic's env.py runs its own event loop, so when called from inside one (a test,
    an app) the migration runs on a worker thread.
    """
    config = alembic_config(database_url)
    secure_sqlite_file(database_url)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        command.upgrade(config, revision)
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(command.upgrade, config, revision).result()


def current_head() -> str | None:
    """The newest revision in the scripts."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
