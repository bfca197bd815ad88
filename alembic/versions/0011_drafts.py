"""Drafts on the server: each editor's unsent post of each story, so that another device
of theirs finds it

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04

A new table only: nothing existing changes. (0009 and 0010 are written in parallel; the
chain is put in order when they are merged.)
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("editor_id", sa.Integer(), nullable=False),
        sa.Column("stream_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("headline", sa.String(length=120), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("contributors", sa.JSON(), nullable=False),
        sa.Column("media", sa.JSON(), nullable=False),
        sa.Column("uploading", sa.JSON(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["editor_id"], ["editors.id"],
                                name=op.f("fk_drafts_editor_id_editors")),
        sa.ForeignKeyConstraint(["stream_id"], ["streams.id"],
                                name=op.f("fk_drafts_stream_id_streams")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drafts")),
        sa.UniqueConstraint("editor_id", "stream_id", name=op.f("uq_drafts_editor_id_stream_id")),
    )
    op.create_index(op.f("ix_drafts_stream_id"), "drafts", ["stream_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_drafts_stream_id"), table_name="drafts")
    op.drop_table("drafts")
