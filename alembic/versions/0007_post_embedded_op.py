"""Cards: the post.embedded event op (a card that arrived after its post was published)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

The events table's CHECK constraint lists the ops an event may have; this revision adds
``post.embedded`` to it. Cards themselves live in ``posts.embeds`` (JSON), which needs no
change. The downgrade refuses while any post.embedded event exists, rather than lose it.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = ("post.created", "post.edited", "post.deleted", "post.pinned", "post.unpinned",
          "stream.updated", "stream.ended")
AFTER = ("post.created", "post.edited", "post.deleted", "post.pinned", "post.unpinned",
         "post.embedded", "stream.updated", "stream.ended")


def _check(ops: tuple[str, ...]) -> str:
    return "op IN ({})".format(", ".join(f"'{o}'" for o in ops))


def _replace(ops: tuple[str, ...]) -> None:
    # On SQLite the batch copies the table; the reflected copy carries the named check,
    # which is dropped and written anew. On PostgreSQL these are two ALTER TABLEs.
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_events_op"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_events_op"), _check(ops))


def upgrade() -> None:
    _replace(AFTER)


def downgrade() -> None:
    found = op.get_bind().execute(
        sa.text("SELECT count(*) FROM events WHERE op = 'post.embedded'")).scalar_one()
    if found:
        raise RuntimeError(f"{found} post.embedded events are stored; a database from before "
                           "cards cannot hold them")
    _replace(BEFORE)
