"""Cards that arrive after their post was published: put in the post, then published.

The routes that publish or edit a post call ``embed_later`` after their commit. When some
of the post's cards were still on their way (``CardMaker.gather`` gave them as pending),
the card maker waits for them in the background; they then go into the post in one
write transaction (``eventlog.embed_cards``: the html and embeds change, the revision
does not, and the post is not marked edited) and the ``post.embedded`` event goes to
every open page through ``writes.commit``.

A card is finished by the process that published its post. If that process stopped first
(a deploy, a crash) or its late write failed, the card would stay pending: so each
process, as it starts, takes up the pending cards of the posts of the last
``RESUME_HOURS`` (``resume``). Several processes may take up the same post; the first to
write it wins, and the others find nothing left pending.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from ..core.content import CardBook
from ..store import eventlog
from ..store.models import Event, utcnow
from .services import Services
from .writes import commit

RESUME_HOURS = 24
log = logging.getLogger("bulletin.cards")


def embed_later(svc: Services, *, post_id: int, body: str, book: CardBook) -> None:
    """Once ``book``'s pending cards (post ``post_id`` was published with them, for
    ``body``) have arrived, show them in the post and tell open pages."""

    async def apply(finished: CardBook) -> None:
        async def change(session: AsyncSession) -> tuple[None, str, list[Event]]:
            view, events = await eventlog.embed_cards(
                session, post_id=post_id, body=body, book=finished)
            return None, view.stream_slug if view else "", events

        await commit(svc, change)

    svc.cards.finish_later(apply, book)


async def resume(svc: Services) -> int:
    """Make again the cards still pending in recent posts, and put them in; returns how
    many posts were taken up. Nothing to do while cards are turned off."""
    if not svc.settings.oembed_enabled:
        return 0
    try:
        async with svc.db.read() as session:
            found = await eventlog.posts_with_pending_cards(
                session, since=utcnow() - timedelta(hours=RESUME_HOURS))
    except Exception:
        log.exception("could not look for cards left pending")
        return 0
    for post_id, body in found:
        embed_later(svc, post_id=post_id, body=body, book=svc.cards.pending_book(body))
    if found:
        log.info("taking up the pending cards of %d posts", len(found))
    return len(found)
