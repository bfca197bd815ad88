"""Posts that wait: a post's status (published, submitted, returned, scheduled), the time
a scheduled post goes out, and the note of a post sent back

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04

Every existing post is ``published``: it was seen by readers and has its events. (The
contributor role whose posts wait came with 0009.) Posts are listed by the time they went
out (``created_at``), with an index for it. The downgrade refuses while any post still
waits: a database from before cannot tell it from a published one, so readers would see
it without its event.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("published", "submitted", "returned", "scheduled")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return "{} IN ({})".format(column, ", ".join(f"'{v}'" for v in values))


def upgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=16), nullable=False,
                                      server_default="published"))
        batch_op.add_column(sa.Column("publish_at", sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=False, server_default=""))
        batch_op.create_check_constraint(batch_op.f("ck_posts_status"),
                                         _one_of("status", STATUSES))
        batch_op.create_index(batch_op.f("ix_posts_status_publish_at"),
                              ["status", "publish_at"], unique=False)
        # Lists sort by the time a post went out, which is no longer the order of ids.
        batch_op.create_index(batch_op.f("ix_posts_stream_id_created_at_id"),
                              ["stream_id", "created_at", "id"], unique=False)


def downgrade() -> None:
    bind = op.get_bind()
    waiting = bind.execute(sa.text(
        "SELECT count(*) FROM posts WHERE status <> 'published' AND deleted_at IS NULL"
    )).scalar_one()
    if waiting:
        raise RuntimeError(f"{waiting} posts are not published (submitted, sent back or "
                           "scheduled); a database from before post statuses would show "
                           "them to readers. Publish or delete them first")
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_posts_stream_id_created_at_id"))
        batch_op.drop_index(batch_op.f("ix_posts_status_publish_at"))
        batch_op.drop_constraint(batch_op.f("ck_posts_status"), type_="check")
        batch_op.drop_column("note")
        batch_op.drop_column("publish_at")
        batch_op.drop_column("status")
