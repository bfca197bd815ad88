"""Editor sessions: signed-in browsers of the editor desk

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Only a hash of the cookie's token is stored, as for API tokens.
    op.create_table(
        "editor_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("editor_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_agent", sa.String(length=200), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["editor_id"], ["editors.id"], name=op.f("fk_editor_sessions_editor_id_editors")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_editor_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_editor_sessions_token_hash")),
    )
    with op.batch_alter_table("editor_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_editor_sessions_editor_id"), ["editor_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_editor_sessions_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("editor_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_editor_sessions_expires_at"))
        batch_op.drop_index(batch_op.f("ix_editor_sessions_editor_id"))
    op.drop_table("editor_sessions")
