"""Cards: what a post shows of a linked video or social post, built on the server. No I/O.

A card moves through explicit states: ``pending`` (its oEmbed is being fetched), then
``ready`` (a full card: author, text, date, thumbnail) or ``link`` (a plain link card:
the provider's name and the URL, with the ``problem`` that kept it plain, when there was
one). ``from_oembed`` turns a provider's answer into a card keeping only plain text and
https URLs on the provider's own hosts: a hostile provider's script, event handlers or
``javascript:`` URLs have nowhere to go. ``card_html`` builds the markup readers get,
from escaped values only; it loads nothing from a third party (a thumbnail is a copy the
server made) and needs no script.
"""

from __future__ import annotations

import enum
import html
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from . import providers as P
from .providers import CardLink, Providers

LINK_REL = "nofollow noopener noreferrer"
MAX_TEXT = 1000
MAX_TITLE = 300
MAX_NAME = 100
MAX_URL = 2000


class CardState(enum.StrEnum):
    """Where a card is: being fetched, complete, or a plain link."""

    PENDING = "pending"
    READY = "ready"
    LINK = "link"


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a card is a plain link, for the desk: a stable code and a sentence."""

    code: str
    message: str

    def to_json(self) -> dict[str, str]:
        """The problem as JSON."""
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class Thumbnail:
    """A copy of the provider's picture, in this server's media storage."""

    width: int
    height: int
    # [{"width", "height", "content_type", "url"}...], as a photo's.
    variants: tuple[dict[str, Any], ...]

    def to_json(self) -> dict[str, Any]:
        """The thumbnail as JSON."""
        return {"width": self.width, "height": self.height, "variants": list(self.variants)}


@dataclass(frozen=True, slots=True)
class Card:
    """A card for one link, in one state."""

    link: CardLink
    state: CardState
    title: str = ""
    text: str = ""
    author_name: str = ""
    author_url: str = ""
    # A machine-readable time (ISO 8601) when the provider gave one, and the date as shown.
    published_at: str = ""
    date: str = ""
    thumbnail: Thumbnail | None = None
    embed_url: str = ""
    problem: Problem | None = field(default=None, compare=False)

    @classmethod
    def pending(cls, link: CardLink, providers: Providers) -> Card:
        """A card whose oEmbed is on its way: shown as a plain link meanwhile."""
        return cls(link, CardState.PENDING, embed_url=P.embed_url(link, providers))

    @classmethod
    def plain(cls, link: CardLink, providers: Providers, problem: Problem | None = None
              ) -> Card:
        """A plain link card (with the reason, when something went wrong)."""
        return cls(link, CardState.LINK, embed_url=P.embed_url(link, providers),
                   problem=problem)

    def with_thumbnail(self, thumbnail: Thumbnail | None) -> Card:
        """The same card with this thumbnail."""
        return replace(self, thumbnail=thumbnail)

    def to_json(self) -> dict[str, Any]:
        """The card as stored with the post and sent to apps (in ``embeds``)."""
        return {
            "type": "card", "provider": self.link.provider, "id": self.link.id,
            "url": self.link.url, "provider_name": P.label(self.link),
            "state": self.state.value, "title": self.title or None,
            "text": self.text or None, "author_name": self.author_name or None,
            "author_url": self.author_url or None,
            "published_at": self.published_at or None, "date": self.date or None,
            "thumbnail": self.thumbnail.to_json() if self.thumbnail else None,
            "embed_url": self.embed_url or None,
            "problem": self.problem.to_json() if self.problem else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Card | None:
        """A stored card, re-checked as it is read; None for an embed from before cards."""
        if data.get("type") != "card" or not isinstance(data.get("url"), str):
            return None
        # Found whatever the instance list is now: the card was made when it was allowed.
        link = _STORED.find(data["url"])
        if link is None or link.provider != data.get("provider"):
            return None
        try:
            state = CardState(str(data.get("state")))
        except ValueError:
            return None
        problem = data.get("problem")
        thumb = data.get("thumbnail")
        return cls(
            link, state, title=_str(data, "title"), text=_str(data, "text"),
            author_name=_str(data, "author_name"), author_url=_str(data, "author_url"),
            published_at=_str(data, "published_at"), date=_str(data, "date"),
            thumbnail=_thumbnail(thumb) if isinstance(thumb, dict) else None,
            embed_url=_str(data, "embed_url"),
            problem=(Problem(str(problem.get("code", "")), str(problem.get("message", "")))
                     if isinstance(problem, dict) else None),
        )


_STORED = Providers(via_proxy=True)


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def _thumbnail(data: dict[str, Any]) -> Thumbnail | None:
    variants = data.get("variants")
    if not isinstance(variants, list) or not variants:
        return None
    try:
        return Thumbnail(int(data["width"]), int(data["height"]),
                         tuple(dict(v) for v in variants))
    except (KeyError, TypeError, ValueError):
        return None


# --- from a provider's answer ------------------------------------------------------------


def from_oembed(link: CardLink, data: dict[str, Any], providers: Providers, *,
                source_origin: str) -> tuple[Card, str]:
    """A ready card from an oEmbed answer, and the thumbnail URL to copy ("" for none).

    ``source_origin`` is the origin of the endpoint that answered (the provider's, or
    the configured proxy's): besides the provider's own media hosts, a thumbnail may come
    from there, since the operator chose it.
    """
    raw = data.get("html")
    markup = raw if isinstance(raw, str) else ""
    paragraphs, date_text = _read_markup(markup)
    shape = P.provider(link).shape
    title = _clean(data.get("title"), MAX_TITLE)
    # A proxy may give no markup to read, only a description.
    text = _clean(paragraphs or data.get("description"), MAX_TEXT)
    if shape != "post":
        text = ""  # a video's markup is its player; its title says what it is
    elif title and title == text:
        title = ""
    published = _iso(data.get("published_at") or data.get("date") or data.get("created_at")
                     ) or _iso_from_text(date_text)
    card = Card(
        link, CardState.READY, title=title, text=text,
        author_name=_clean(data.get("author_name"), MAX_NAME),
        author_url=safe_url(data.get("author_url"), P.page_hosts(link)),
        published_at=published, date=_clean(date_text, 60) or _shown_date(published),
        embed_url=P.embed_url(link, providers, bluesky_uri=P.bluesky_uri(markup)),
    )
    return card, thumbnail_url(link, data.get("thumbnail_url"), providers,
                               source_origin=source_origin)


def from_mastodon_status(status: dict[str, Any]) -> dict[str, Any]:
    """A Mastodon status (``/api/v1/statuses/{id}``) in oEmbed's terms."""
    found = status.get("account")
    account: dict[str, Any] = found if isinstance(found, dict) else {}
    media = status.get("media_attachments")
    first: dict[str, Any] = (media[0] if isinstance(media, list) and media
                             and isinstance(media[0], dict) else {})
    return {
        "author_name": account.get("display_name") or account.get("username"),
        "author_url": account.get("url"),
        "html": f"<blockquote><p>{status.get('content') or ''}</p></blockquote>"
                if isinstance(status.get("content"), str) else "",
        "created_at": status.get("created_at"),
        "thumbnail_url": first.get("preview_url"),
    }


def thumbnail_url(link: CardLink, value: Any, providers: Providers, *,
                  source_origin: str) -> str:
    """``value`` if the server may copy it: an https URL on the provider's media hosts, or
    a URL on the endpoint that answered; else ""."""
    if not isinstance(value, str) or not _plain_url(value):
        return ""
    parts = urlsplit(value)
    if source_origin and f"{parts.scheme}://{parts.netloc}".lower() == source_origin.lower():
        return value
    return safe_url(value, P.media_hosts(link, providers))


def safe_url(value: Any, hosts: tuple[str, ...] | frozenset[str]) -> str:
    """``value`` if it is an https URL on one of ``hosts`` (with no credentials or other
    port), else ""."""
    if not isinstance(value, str) or not _plain_url(value):
        return ""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return ""
    if (parts.scheme != "https" or parts.username or parts.password
            or port not in (None, 443) or not P.host_allowed(parts.hostname or "", hosts)):
        return ""
    return value


def _plain_url(value: str) -> bool:
    return 0 < len(value) <= MAX_URL and re.fullmatch(r"[!#-;=?-~]+", value) is not None


class _Markup(HTMLParser):
    """The visible text of oEmbed markup: its paragraphs, and the last link outside them
    (where X, Bluesky and Facebook put the post's date). Script, styles and frames are
    skipped whole."""

    SKIPPED = frozenset({"script", "style", "iframe", "noscript", "template", "object",
                         "svg", "math", "title", "head", "select", "textarea"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.skipping: list[str] = []
        self.in_p = 0
        self.in_a = False
        self.paragraphs: list[list[str]] = []
        self.all: list[str] = []
        self.link_text: list[str] = []
        self.last_link = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skipping or tag in self.SKIPPED:
            if tag in self.SKIPPED:
                self.skipping.append(tag)
            return
        if tag == "p":
            self.in_p += 1
            self.paragraphs.append([])
        elif tag == "br":
            self._add("\n")
        elif tag == "a" and not self.in_p:
            self.in_a, self.link_text = True, []

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            if tag == self.skipping[-1]:
                self.skipping.pop()
            return
        if tag == "p" and self.in_p:
            self.in_p -= 1
        elif tag == "a" and self.in_a:
            self.in_a = False
            self.last_link = "".join(self.link_text).strip()

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self._add(data)

    def _add(self, text: str) -> None:
        self.all.append(text)
        if self.in_p and self.paragraphs:
            self.paragraphs[-1].append(text)
        elif self.in_a:
            self.link_text.append(text)


def _read_markup(markup: str) -> tuple[str, str]:
    if not markup:
        return "", ""
    parser = _Markup()
    try:
        parser.feed(markup[:200_000])
        parser.close()
    except (AssertionError, ValueError):  # a parser that gives up on hostile markup
        return "", ""
    paragraphs = ["".join(p) for p in parser.paragraphs]
    return "\n\n".join(p for p in paragraphs if p.strip()), parser.last_link


def plain_text(markup: str) -> str:
    """The visible text of an HTML fragment, without any markup."""
    parser = _Markup()
    try:
        parser.feed(markup)
        parser.close()
    except (AssertionError, ValueError):
        return ""
    return "".join(parser.all)


_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def _clean(value: Any, limit: int) -> str:
    """Plain, printable text of at most ``limit`` characters (markup removed)."""
    if not isinstance(value, str):
        return ""
    text = plain_text(value) if "<" in value or "&" in value else value
    text = _CONTROLS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [re.sub(r"[ \t\xa0]+", " ", line).strip() for line in text.split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    if len(text) > limit:
        text = text[:limit - 1].rsplit(" ", 1)[0].rstrip(" ,.;:") + "…"
    return text


def _iso(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 40:
        return ""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return ""
    if moment.tzinfo is None:
        return moment.date().isoformat() if len(value.strip()) == 10 else ""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_from_text(text: str) -> str:
    cleaned = text.replace(" at ", " ").strip()
    for pattern in ("%B %d, %Y", "%b %d, %Y", "%d %B %Y"):
        try:
            return datetime.strptime(cleaned, pattern).date().isoformat()
        except ValueError:
            continue
    return ""


def _shown_date(iso: str) -> str:
    if not iso:
        return ""
    moment = datetime.fromisoformat(iso)
    return f"{moment:%-d %B %Y}"


# --- the markup readers get --------------------------------------------------------------


def card_html(card: Card) -> str:
    """The card's markup, built from escaped values: no script, no third-party load."""
    link = card.link
    e = _escape
    shape = P.provider(link).shape
    name = P.label(link)
    attrs = (f'class="link-card link-card-{shape}" data-provider="{e(link.provider)}" '
             f'data-state="{card.state.value}" data-provider-name="{e(name)}"')
    if card.embed_url:
        attrs += (f' data-embed-url="{e(card.embed_url)}" data-embed-shape="{shape}"'
                  f' data-embed-title="{e(_frame_title(card, name))}"')
    url = e(link.url)
    original = f'<a class="card-original" href="{url}" rel="{LINK_REL}">View on {e(name)}</a>'
    head = f'<span class="card-provider">{e(name)}</span>'
    if card.author_name:
        author = e(card.author_name)
        if card.author_url:
            head += (f' <a class="card-author" href="{e(card.author_url)}" rel="{LINK_REL}">'
                     f"{author}</a>")
        else:
            head += f' <span class="card-author">{author}</span>'

    if card.state is not CardState.READY:
        shown = e(re.sub(r"^https://(www\.)?", "", link.url))
        return (f'<figure {attrs}><header class="card-head">{head}</header>'
                f'<p class="card-url"><a href="{url}" rel="{LINK_REL}">{shown}</a></p>'
                "</figure>")
    parts = [f'<figure {attrs}><header class="card-head">{head}</header>']
    media = _picture(card.thumbnail) if card.thumbnail else ""
    title = (f'<p class="card-title"><a href="{url}" rel="{LINK_REL}">{e(card.title)}</a></p>'
             if card.title else "")
    if shape == "post":
        if card.text:
            text = "</p><p>".join(e(p).replace("\n", "<br>") for p in card.text.split("\n\n"))
            parts.append(f'<blockquote class="card-text" cite="{url}"><p>{text}</p></blockquote>')
        parts += [title, media]
    else:
        parts += [media, title]
    date = ""
    if card.published_at or card.date:
        shown_date = e(card.date or card.published_at)
        date = (f'<time class="card-date" datetime="{e(card.published_at)}">{shown_date}</time> '
                if card.published_at else f'<span class="card-date">{shown_date}</span> ')
    parts.append(f'<footer class="card-foot">{date}{original}</footer></figure>')
    return "".join(parts)


def _frame_title(card: Card, name: str) -> str:
    what = "video" if P.provider(card.link).shape != "post" else "post"
    detail = card.title or card.author_name
    return f"{name} {what}: {detail}" if detail else f"{name} {what}"


def _picture(thumb: Thumbnail) -> str:
    e = _escape

    def srcset(kind: str) -> str:
        return ", ".join(f"{e(str(v['url']))} {int(v['width'])}w" for v in thumb.variants
                         if v.get("content_type") == kind)

    jpegs = [v for v in thumb.variants if v.get("content_type") == "image/jpeg"]
    fallback = min(jpegs or list(thumb.variants), key=lambda v: abs(int(v["width"]) - 640))
    webp = srcset("image/webp")
    source = (f'<source type="image/webp" srcset="{webp}" sizes="{CARD_SIZES}">'
              if webp else "")
    return (f'<div class="card-media"><picture>{source}<img src="{e(str(fallback["url"]))}" '
            f'srcset="{srcset("image/jpeg")}" sizes="{CARD_SIZES}" width="{thumb.width}" '
            f'height="{thumb.height}" alt="" loading="lazy" decoding="async"></picture></div>')


# How wide a card's picture is drawn: the card is at most 36rem wide.
CARD_SIZES = "(min-width: 40rem) 36rem, calc(100vw - 3rem)"


def _escape(value: str) -> str:
    return html.escape(value, quote=True)


# --- what a page must allow ---------------------------------------------------------------

# Players that posts from before cards embedded directly (their stored html has them).
_LEGACY_FRAMES = {"youtube": "https://www.youtube-nocookie.com",
                  "vimeo": "https://player.vimeo.com"}


def frame_origins(embeds: list[dict[str, Any]]) -> set[str]:
    """The origins a page showing posts with these ``embeds`` must allow in frame-src:
    those of the players its cards may load on click (and of the players that posts from
    before cards show)."""
    found: set[str] = set()
    for data in embeds:
        if not isinstance(data, dict):
            continue
        provider = data.get("provider")
        if data.get("type") != "card":
            if isinstance(provider, str) and provider in _LEGACY_FRAMES:
                found.add(_LEGACY_FRAMES[provider])
            continue
        src = data.get("embed_url")
        if not isinstance(src, str) or not src.startswith("https://"):
            continue
        known = P.PROVIDERS.get(provider) if isinstance(provider, str) else None
        origin = "https://" + (urlsplit(src).hostname or "")
        if known is not None and known.frame_origins:
            if origin in known.frame_origins:
                found.update(known.frame_origins)
        elif provider == "mastodon" and re.fullmatch(r"https://[a-z0-9.-]+", origin):
            found.add(origin)
    return found
