"""Cards that arrive after their post was published: put in the post, then published.

The routes that publish or edit a post call ``embed_later`` after their commit. When some
of the post's cards were still on their way (``CardMaker.gather`` gave them as pending),
the card maker waits for them in the background; they then go into the post in one
write transaction (``eventlog.embed_cards``: the html and embeds change, the revision
does not, and the post is not marked edited) and the ``post.embedded`` event goes to
every open page through ``writes.commit``.
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from ..core.content import CardBook
from ..store import eventlog
from ..store.models import Event
from .services import Services
from .writes import commit


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
