"""Restate post history: past events carry each post's current state

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

Until now each event kept the post as it was when the event was written, so a replay of
the log served text that had since been corrected or deleted. From now on the store
rewrites a post's earlier events whenever the post changes (server/store/eventlog.py); this
revision does the same once for the history already stored: for every post with more
than one event, the earlier events take the ``post`` object of its newest event, which
carries the post's current state (for a deleted post, the tombstone). Seq, op and time
stay. No schema change.

The downgrade changes nothing: the replaced texts are gone from the log by design (the
editors' revisions in ``post_revisions`` keep them).
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Posts handled per round trip: bounds memory on a large log.
BATCH = 500

events = sa.table(
    "events",
    sa.column("id", sa.Integer()),
    sa.column("post_id", sa.Integer()),
    sa.column("seq", sa.Integer()),
    sa.column("payload", sa.Text()),
)


def upgrade() -> None:
    conn = op.get_bind()
    post_ids = [row[0] for row in conn.execute(
        sa.select(events.c.post_id).where(events.c.post_id.is_not(None))
        .group_by(events.c.post_id).having(sa.func.count() > 1).order_by(events.c.post_id)
    )]
    for start in range(0, len(post_ids), BATCH):
        rows = conn.execute(
            sa.select(events.c.id, events.c.post_id, events.c.payload)
            .where(events.c.post_id.in_(post_ids[start:start + BATCH]))
            .order_by(events.c.post_id, events.c.seq.desc())
        ).all()
        changed: list[dict[str, Any]] = []
        current: dict[str, Any] | None = None
        last_post = None
        for event_id, post_id, payload in rows:
            if post_id != last_post:
                # The newest event of this post comes first: it holds the current state.
                last_post = post_id
                current = json.loads(payload).get("post")
                continue
            if isinstance(current, dict):
                restated = _restate(payload, current)
                if restated != payload:
                    changed.append({"event_id": event_id, "new_payload": restated})
        if changed:
            conn.execute(
                events.update().where(events.c.id == sa.bindparam("event_id"))
                .values(payload=sa.bindparam("new_payload")),
                changed,
            )


def downgrade() -> None:
    # Nothing to undo: see the docstring.
    pass


def _restate(payload: str, post: dict[str, Any]) -> str:
    # A frozen copy of bulletin.core.protocol.restate as it was when this revision was written:
    # a migration must keep doing what it did, whatever the code does later.
    # tests/test_migrations.py checks the two agree.
    data = json.loads(payload)
    old = data.get("post") if isinstance(data, dict) else None
    if not isinstance(old, dict) or _rank(old) > _rank(post):
        return payload
    data["post"] = post
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _rank(post: dict[str, Any]) -> tuple[bool, int]:
    revision = post.get("revision")
    return (post.get("deleted") is True,
            revision if isinstance(revision, int) and not isinstance(revision, bool) else 0)
