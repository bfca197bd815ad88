"""Access: scoped, stream-bound and expiring API tokens; the contributor role

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04

``api_tokens`` gains ``scope`` (read, write or admin; existing tokens become ``write``,
which is what they could do before), ``streams`` (a JSON list of slugs; NULL, as for every
existing token, is every stream) and ``expires_at`` (NULL: never). The editors table's
CHECK constraint on ``role`` adds ``contributor``.

The downgrade refuses, rather than widen or lose anything, while a contributor exists or
an unrevoked token is narrower than "write, every stream, never expires": the database
before this revision would let such a token do more than it was given.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES_BEFORE = ("admin", "editor")
ROLES_AFTER = ("contributor", "editor", "admin")
SCOPES = ("read", "write", "admin")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return "{} IN ({})".format(column, ", ".join(f"'{v}'" for v in values))


def _roles(roles: tuple[str, ...]) -> None:
    # On SQLite the batch copies the table; the reflected copy carries the named check,
    # which is dropped and written anew. On PostgreSQL these are two ALTER TABLEs.
    with op.batch_alter_table("editors", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_editors_role"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_editors_role"), _one_of("role", roles))


def upgrade() -> None:
    _roles(ROLES_AFTER)
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scope", sa.String(length=16), nullable=False,
                                      server_default="write"))
        batch_op.add_column(sa.Column("streams", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_check_constraint(batch_op.f("ck_api_tokens_scope"),
                                         _one_of("scope", SCOPES))


def downgrade() -> None:
    bind = op.get_bind()
    contributors = bind.execute(
        sa.text("SELECT count(*) FROM editors WHERE role = 'contributor'")).scalar_one()
    if contributors:
        raise RuntimeError(f"{contributors} editors are contributors, a role the database "
                           "before 0009 cannot hold; remove them or give them another role")
    narrow = bind.execute(sa.text(
        "SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL AND (scope <> 'write' "
        "OR streams IS NOT NULL OR expires_at IS NOT NULL)")).scalar_one()
    if narrow:
        raise RuntimeError(f"{narrow} unrevoked API tokens have a scope other than write, "
                           "streams or an expiry, which the database before 0009 would drop "
                           "and so let them do more: revoke them first (bulletin token revoke)")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_api_tokens_scope"), type_="check")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("streams")
        batch_op.drop_column("scope")
    _roles(ROLES_BEFORE)
