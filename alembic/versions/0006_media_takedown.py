"""Photo take-down and a story's photos: media.stream_id, media.taken_down_at/_by_id,
and the photos each post revision showed

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("media", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stream_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("taken_down_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("taken_down_by_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_media_stream_id"), ["stream_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_media_stream_id_streams"), "streams", ["stream_id"], ["id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_media_taken_down_by_id_editors"), "editors",
            ["taken_down_by_id"], ["id"])
    with op.batch_alter_table("post_revisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("media", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("post_revisions", schema=None) as batch_op:
        batch_op.drop_column("media")
    with op.batch_alter_table("media", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_media_taken_down_by_id_editors"),
                                 type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_media_stream_id_streams"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_media_stream_id"))
        batch_op.drop_column("taken_down_by_id")
        batch_op.drop_column("taken_down_at")
        batch_op.drop_column("stream_id")
