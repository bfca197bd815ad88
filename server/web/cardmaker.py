"""Cards for the links in a post: fetched once, waited for briefly, finished later.

``CardMaker.gather`` finds a text's card links and makes their cards, waiting at most
``oembed_wait_seconds`` in all: what is not ready by then is a ``pending`` card (a plain
link meanwhile), and publishing goes ahead. ``finish_later`` then waits for those in the
background and hands the finished cards on (``latecards.embed_later`` puts them in the
post: no new revision, not marked edited, one ``post.embedded`` event for open pages). A
provider that fails leaves a plain link card with the reason, for the desk.

Each link is fetched once at a time (callers asking meanwhile share the fetch), and the
outcome is kept in memory for a while (``READY_SECONDS``, ``FAILED_SECONDS``), so the
desk's preview, then the publish, then a retry cost one call. A thumbnail is copied: the
server fetches it from the provider's media hosts, processes it as a photo (metadata
stripped, WebP and JPEG widths) and stores it in the media store, so readers never
contact the provider before they click. Every task is tracked; ``close`` cancels them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ..core import images
from ..core.cards import Card, CardState, Problem, Thumbnail, from_oembed
from ..core.content import CardBook, card_links
from ..core.providers import DEFAULT_MASTODON_HOSTS, CardLink, Providers
from ..settings import Settings
from ..store.media import MediaStore, MediaUnavailable
from ..store.media.files import put_variants
from .oembed import FetchRefused, OEmbedFetcher

if TYPE_CHECKING:
    from .imaging import ImageWorkers

log = logging.getLogger("bulletin.cards")

READY_SECONDS = 15 * 60
FAILED_SECONDS = 60
CACHE_ENTRIES = 512
# Provider calls in flight per process.
MAX_FETCHES = 8
# Widths kept of a thumbnail: a card is at most 36rem wide (twice that on dense screens).
THUMBNAIL_WIDTH = 1200
# Thumbnails are small pictures: far below the photo limit.
THUMBNAIL_MAX_PIXELS = 20_000_000
# A card shows a still picture: the WebP and JPEG variants, not a kept GIF animation.
CARD_TYPES = frozenset({"image/webp", "image/jpeg"})


class CardMaker:
    """Makes cards for links; one per process, built by the app's lifespan."""

    def __init__(self, settings: Settings, *, media: MediaStore,
                 imaging: ImageWorkers, fetcher: OEmbedFetcher | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.providers = Providers(
            mastodon_hosts=frozenset(h.lower() for h in settings.oembed_mastodon_hosts
                                     or DEFAULT_MASTODON_HOSTS),
            via_proxy=bool(settings.oembed_proxy_url))
        self.fetcher = fetcher or OEmbedFetcher(settings, self.providers)
        self.media = media
        self.imaging = imaging
        self.clock = clock
        self._fetches = asyncio.Semaphore(MAX_FETCHES)
        self._cache: dict[str, tuple[float, Card]] = {}
        self._making: dict[str, asyncio.Task[Card]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    # --- the requests' side --------------------------------------------------------------

    async def gather(self, body: str, *, wait: float | None = None) -> CardBook:
        """The cards for ``body``'s links, waiting at most ``wait`` seconds (the setting
        by default); the ones not made by then are pending."""
        known: dict[str, Card] = {}
        waiting: dict[CardLink, asyncio.Task[Card]] = {}
        for link in card_links(body, self.providers):
            cached = self._cached(link)
            if cached is not None:
                known[link.url] = cached
            else:
                waiting[link] = self._making_of(link)
        if waiting:
            timeout = self.settings.oembed_wait_seconds if wait is None else wait
            await asyncio.wait(set(waiting.values()), timeout=timeout)
        for link, task in waiting.items():
            known[link.url] = (task.result() if task.done() and not task.cancelled()
                               else Card.pending(link, self.providers))
        return CardBook(self.providers, known)

    def finish_later(self, apply: Callable[[CardBook], Coroutine[Any, Any, None]],
                     book: CardBook) -> None:
        """When ``book`` has pending cards, wait for them in the background, then call
        ``apply`` with the finished book."""
        pending = [c.link for c in book.cards.values() if c.state is CardState.PENDING]
        if not pending or self._closed:
            return
        self._track(self._finish(apply, book, pending))

    async def _finish(self, apply: Callable[[CardBook], Coroutine[Any, Any, None]],
                      book: CardBook, pending: list[CardLink]) -> None:
        made = await asyncio.gather(*(self._card(link) for link in pending))
        cards = dict(book.cards) | {card.link.url: card for card in made}
        try:
            await apply(CardBook(self.providers, cards))
        except Exception:
            log.exception("could not apply cards that arrived late")

    def pending_book(self, body: str) -> CardBook:
        """``body``'s cards, every one pending: for cards left pending by a process that
        stopped before they arrived, to be made again (``finish_later``)."""
        return CardBook(self.providers, {link.url: Card.pending(link, self.providers)
                                         for link in card_links(body, self.providers)})

    def background(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run ``coroutine`` as one of the card maker's tasks (cancelled by ``close``)."""
        if self._closed:
            coroutine.close()
            return
        self._track(coroutine)

    async def close(self) -> None:
        """Cancel every fetch and late card, and close the connections."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.fetcher.aclose()

    # --- making one card -----------------------------------------------------------------

    def _cached(self, link: CardLink) -> Card | None:
        entry = self._cache.get(link.url)
        if entry is None:
            return None
        if entry[0] < self.clock():
            del self._cache[link.url]
            return None
        return entry[1]

    async def _card(self, link: CardLink) -> Card:
        """The card for ``link``: kept from a moment ago, or from the fetch under way (or
        a new one)."""
        return self._cached(link) or await self._making_of(link)

    def _making_of(self, link: CardLink) -> asyncio.Task[Card]:
        task = self._making.get(link.url)
        if task is None:
            task = self._track(self._make(link))
            task.set_name(f"card {link.url}")
            self._making[link.url] = task
            task.add_done_callback(lambda done: self._made(link, done))
        return task

    def _made(self, link: CardLink, task: asyncio.Task[Card]) -> None:
        if self._making.get(link.url) is task:
            del self._making[link.url]
        if task.cancelled() or task.exception() is not None:
            return
        card = task.result()
        ttl = READY_SECONDS if card.state is CardState.READY else FAILED_SECONDS
        self._cache[link.url] = (self.clock() + ttl, card)
        while len(self._cache) > CACHE_ENTRIES:
            del self._cache[next(iter(self._cache))]

    async def _make(self, link: CardLink) -> Card:
        """The card for one link; never raises (a failure is a plain link card)."""
        try:
            return await self._fetch(link)
        except Exception:
            log.exception("could not make the card of %s", link.url)
            return Card.plain(link, self.providers, Problem(
                "card_failed", "the server could not make this card"))

    async def _fetch(self, link: CardLink) -> Card:
        if not self.settings.oembed_enabled:
            return Card.plain(link, self.providers, Problem(
                "cards_off", "cards are turned off on this server (BULLETIN_OEMBED_ENABLED)"))
        try:
            async with self._fetches:
                answer = await self.fetcher.oembed(link)
        except FetchRefused as exc:
            log.info("no card for %s: %s", link.url, exc.message)
            return Card.plain(link, self.providers, Problem(exc.code, exc.message))
        card, thumbnail = from_oembed(link, answer.data, self.providers,
                                      source_origin=answer.origin)
        if thumbnail:
            card = card.with_thumbnail(await self._copy(link, thumbnail))
        return card

    async def _copy(self, link: CardLink, url: str) -> Thumbnail | None:
        """The thumbnail at ``url``, processed and stored; None when that fails."""
        try:
            async with self._fetches:
                data = await self.fetcher.thumbnail(url)
            picture = await self.imaging.process(
                data, max_pixels=min(self.settings.max_image_pixels, THUMBNAIL_MAX_PIXELS))
            kept = [v for v in picture.variants if v.content_type in CARD_TYPES
                    and v.width <= THUMBNAIL_WIDTH] or [
                        v for v in picture.variants if v.content_type in CARD_TYPES][:2]
            # Named from the bytes as photos are, under a digest of their own, so that a
            # photo's take-down and a thumbnail never share a file.
            digest = hashlib.sha256(b"bulletin card thumbnail\0" + data).hexdigest()
            stored = await put_variants(self.media, digest, kept, [])
        except (FetchRefused, images.ImageRefused, MediaUnavailable) as exc:
            log.info("no thumbnail for %s: %s", link.url, exc)
            return None
        if not stored:
            return None
        largest = max(stored, key=lambda v: v.width)
        return Thumbnail(largest.width, largest.height, tuple(
            {"width": v.width, "height": v.height, "content_type": v.content_type,
             "url": self.media.url(v.name)} for v in stored))

    def _track(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
