"""Headlines, tags and bylines: posts get a headline, tags and contributors (people from
the new directory), and revisions keep them

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04

Existing posts get no headline, no tags and no contributors (their author stays their
byline on the pages, as before).
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _columns() -> list[sa.Column[object]]:
    return [
        sa.Column("headline", sa.String(length=120), nullable=False, server_default=""),
        sa.Column("tags", sa.JSON(), nullable=False, server_default="[]"),
        sa.Column("contributors", sa.JSON(), nullable=False, server_default="[]"),
    ]


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("photo", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_people")),
    )
    for table in ("posts", "post_revisions"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in _columns():
                batch_op.add_column(column)


def downgrade() -> None:
    for table in ("post_revisions", "posts"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name in ("contributors", "tags", "headline"):
                batch_op.drop_column(name)
    op.drop_table("people")
