"""Idempotent creation: a retried create with the same key gets the first one's outcome.

A client that lost the answer to a POST may send it again with the same
``Idempotency-Key`` (the desk's forms carry one as a field): the stream or post is created
once, and the retry receives the stored status and body, marked as replayed. A key reused
for a different request is refused with 422.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from ..core.errors import ApiError
from ..store import eventlog
from ..store.models import Editor, Event
from ..store.payloads import encode
from .responses import json_response
from .services import Services, services
from .writes import commit

IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,200}$")



# What a creation returns from inside its transaction: (status, body, stream slug, events).
Created = tuple[int, dict[str, Any], str, list[Event]]


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to an idempotent request: the first run's, or its replay."""

    status: int
    body: dict[str, Any]
    replayed: bool = False

    def response(self) -> Response:
        """The outcome as JSON, marked ``Idempotent-Replayed`` when it is a replay."""
        headers = {"Idempotent-Replayed": "true"} if self.replayed else None
        return json_response(self.body, self.status, headers)


async def run_once(
    request: Request, editor: Editor, raw: bytes,
    create: Callable[[AsyncSession], Awaitable[Created]], *, key: str | None,
) -> Outcome:
    """Run ``create`` at most once per idempotency key; replay its outcome on retries.

    ``create`` runs inside the write transaction and returns (status, body, stream slug,
    events); the outcome is stored in the same transaction, and the events are published
    once it has committed. The API passes its ``Idempotency-Key`` header as ``key``, the
    desk's forms the key they carry as a field; None runs ``create`` without a key.
    """
    svc = services(request)
    ttl = timedelta(hours=svc.settings.idempotency_ttl_hours)
    fingerprint = _fingerprint(request, raw)
    assert editor.id is not None
    replay = await earlier(request, editor, raw, key=key)
    if replay is not None:
        return replay
    editor_id = editor.id

    async def change(session: AsyncSession) -> tuple[Outcome, str, list[Event]]:
        status, body, slug, events = await create(session)
        if key is not None:
            await eventlog.save_idempotent(
                session, editor_id=editor_id, key=key, fingerprint=fingerprint,
                status_code=status, response=encode(body), ttl=ttl)
        return Outcome(status, body), slug, events

    try:
        return await commit(svc, change)
    except sa.exc.IntegrityError:
        # The same key raced us and committed first; its outcome is the answer.
        replay = None if key is None else await _replay(svc, editor.id, key, fingerprint, ttl)
        if replay is None:
            raise
        return replay


async def earlier(request: Request, editor: Editor, raw: bytes, *,
                  key: str | None) -> Outcome | None:
    """The stored outcome of an earlier request with this key, if there was one (422 if it
    was another request). ``run_once`` asks first itself; a handler with costly work to do
    before its transaction (an upload's image processing) asks before doing it."""
    if key is None:
        return None
    if not IDEMPOTENCY_KEY_RE.match(key):
        raise ApiError(400, "invalid_idempotency_key",
                       "Idempotency-Key must be 1-200 printable ASCII characters")
    svc = services(request)
    assert editor.id is not None
    return await _replay(svc, editor.id, key, _fingerprint(request, raw),
                         timedelta(hours=svc.settings.idempotency_ttl_hours))


def _fingerprint(request: Request, raw: bytes) -> str:
    return hashlib.sha256(
        b"\0".join([request.method.encode(), request.url.path.encode(), raw])
    ).hexdigest()


async def _replay(
    svc: Services, editor_id: int, key: str, fingerprint: str, ttl: timedelta
) -> Outcome | None:
    async with svc.db.read() as session:
        row = await eventlog.find_idempotent(session, editor_id=editor_id, key=key, ttl=ttl)
    if row is None:
        return None
    if row.fingerprint != fingerprint:
        raise ApiError(422, "idempotency_key_reused",
                       "this Idempotency-Key was used for a different request")
    return Outcome(row.status_code, json.loads(row.response), replayed=True)
