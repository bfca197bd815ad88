"""Posts that wait: a post's status (published, submitted, returned, scheduled), the time
a scheduled post goes out, the note of a post sent back, and the contributor role

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-04

Every existing post is ``published``: it was seen by readers and has its events. The
editors' role check gains ``contributor``. Posts are listed by the time they went out
(``created_at``), with an index for it. The downgrade refuses while any post still
waits (a database from before cannot tell it from a published one, so readers would see
it without its event) or any contributor account exists.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("published", "submitted", "returned", "scheduled")
ROLES_BEFORE = ("admin", "editor")
ROLES_AFTER = ("admin", "editor", "contributor")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return "{} IN ({})".format(column, ", ".join(f"'{v}'" for v in values))


def _roles(roles: tuple[str, ...]) -> None:
    # On SQLite the batch copies the table with the named check dropped and written anew;
    # on PostgreSQL these are two ALTER TABLEs.
    with op.batch_alter_table("editors", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_editors_role"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_editors_role"),
                                         _one_of("role", roles))


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
    _roles(ROLES_AFTER)


def downgrade() -> None:
    bind = op.get_bind()
    waiting = bind.execute(sa.text(
        "SELECT count(*) FROM posts WHERE status <> 'published' AND deleted_at IS NULL"
    )).scalar_one()
    if waiting:
        raise RuntimeError(f"{waiting} posts are not published (submitted, sent back or "
                           "scheduled); a database from before post statuses would show "
                           "them to readers. Publish or delete them first")
    contributors = bind.execute(sa.text(
        "SELECT count(*) FROM editors WHERE role = 'contributor'")).scalar_one()
    if contributors:
        raise RuntimeError(f"{contributors} editor accounts are contributors; a database "
                           "from before the role cannot hold them. Change their role first")
    _roles(ROLES_BEFORE)
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_posts_stream_id_created_at_id"))
        batch_op.drop_index(batch_op.f("ix_posts_status_publish_at"))
        batch_op.drop_constraint(batch_op.f("ck_posts_status"), type_="check")
        batch_op.drop_column("note")
        batch_op.drop_column("publish_at")
        batch_op.drop_column("status")
