"""The desk's posts that wait (the no-JavaScript path, and the script's too): approve or
publish now, send back with a note, reschedule.

Plain form POSTs answered with a 303 back to the stream page and a flash message, going
through the same store functions and ``writes.commit`` as the API's endpoints. Editing
and deleting (cancelling) a post that waits are the desk's ordinary post forms.
"""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from ...core.errors import ApiError
from ...store import eventlog, publishing
from ...store.models import Event, utcnow
from ..callers import limit_writes, not_for_contributors
from ..deskforms import Desk, desk_endpoint, friendly, page, publish_time, redirect
from ..services import services
from ..validation import PostPatch, SendBack, checked_post_id, future_time, validated
from ..writes import commit


@desk_endpoint()
async def approve(request: Request, desk: Desk) -> Response:
    """POST /editor/posts/{id}/approve: publish a post that waits, now."""
    post_id = await _checked(request, desk, "approve")

    async def change(session: AsyncSession) -> tuple[str, str, list[Event]]:
        view, events = await publishing.approve(session, post_id=post_id, editor=desk.editor)
        return view.stream_slug, view.stream_slug, events

    slug = await commit(services(request), change)
    return redirect(request, f"/editor/streams/{slug}#post-{post_id}",
                    "Published: readers see it now.")


@desk_endpoint()
async def send_back(request: Request, desk: Desk) -> Response:
    """POST /editor/posts/{id}/send-back: return a submitted post with a note."""
    post_id = await _checked(request, desk, "send_back")
    try:
        data, _raw = validated({"note": desk.form.get("note", "")}, SendBack)
    except ApiError:
        raise ApiError(422, "validation_error",
                       "Write a note saying what should change, then send it back.") from None

    async def change(session: AsyncSession) -> tuple[str, str, list[Event]]:
        view = await publishing.send_back(session, post_id=post_id, editor=desk.editor,
                                          note=data.note)
        return view.stream_slug, view.stream_slug, []

    slug = await commit(services(request), change)
    return redirect(request, f"/editor/streams/{slug}#queue",
                    "Sent back to its contributor with your note.")


@desk_endpoint()
async def reschedule(request: Request, desk: Desk) -> Response:
    """POST /editor/posts/{id}/schedule: a scheduled post's new time."""
    post_id = await _checked(request, desk, "schedule")
    when = publish_time(desk.form)
    try:
        data, _raw = validated({"publish_at": when}, PostPatch)
        if data.publish_at is None:
            raise ApiError(422, "validation_error", "Choose the time it should go out.")
        at = future_time(data.publish_at, utcnow())
    except ApiError as exc:
        raise ApiError(exc.status, exc.code, friendly(exc)) from None

    async def change(session: AsyncSession) -> tuple[Any, str, list[Event]]:
        view, events = await eventlog.edit_post(session, post_id=post_id,
                                                editor=desk.editor, publish_at=at)
        return view.stream_slug, view.stream_slug, events

    slug = await commit(services(request), change)
    return redirect(request, f"/editor/streams/{slug}#queue", "Rescheduled.")


async def _checked(request: Request, desk: Desk, action: str) -> int:
    not_for_contributors(desk.editor, action)
    limit_writes(request, desk.editor)
    return checked_post_id(request.path_params["id"])


def routes() -> list[BaseRoute]:
    """The desk's routes for posts that wait (before the desk's catch-all)."""
    return [
        page("/editor/posts/{id:int}/approve", approve, "POST"),
        page("/editor/posts/{id:int}/send-back", send_back, "POST"),
        page("/editor/posts/{id:int}/schedule", reschedule, "POST"),
    ]
