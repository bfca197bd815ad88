"""Markdown to sanitised HTML, with links to known video and social posts as cards.

A line of a top-level paragraph that is only a link to a known provider's post (bare,
``<url>`` or ``[url](url)``) becomes a card: a paragraph of its own, or the line right
after the text with no blank line between (the text stays a paragraph). Bare URLs in
sentences become links (linkify). What the renderer removes is said, not silently
dropped: the result carries ``notices`` for the desk (an ``http://`` image, for one).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

from .cards import Card, CardState, card_html
from .providers import CardLink, Providers, label

_md = MarkdownIt("commonmark", {"html": False, "linkify": True}).enable(
    ["table", "strikethrough", "linkify"])
# Only URLs with a scheme (and e-mail addresses) are linked: "example.com" or "Node.js" in
# a sentence stays text, rather than becoming a guessed http:// link.
assert _md.linkify is not None
_md.linkify.set({"fuzzy_link": False})

ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "blockquote", "ul", "ol",
    "li", "a", "img", "h2", "h3", "h4", "table", "thead", "tbody", "tr", "th", "td",
    "sup", "sub",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"},
    "th": {"class"}, "td": {"class"},
}
# Table cell alignment, as classes: the pages' Content-Security-Policy blocks style
# attributes, which is what markdown-it writes.
ALIGN_CLASSES = frozenset({"align-left", "align-center", "align-right"})
_ALIGN_STYLE = re.compile(r'<(th|td) style="text-align:(left|center|right)">')
LINK_REL = "nofollow noopener noreferrer"
# Links past this many in one post stay links: each card is a fetch at publish time.
MAX_CARDS = 10
_LONE_LINK = re.compile(
    r"^ {0,3}(?:<(?P<angle>https?://[^\s<>]+)>"
    r"|\[(?P<text>https?://[^\s\]]+)\]\((?P<href>https?://[^\s()]+)\)"
    r"|(?P<bare>https?://\S+))[ \t]*$")


class ContentError(ValueError):
    """Raised for content that cannot be posted (empty, or nothing left once sanitised);
    ``notices`` says what was removed on the way."""

    def __init__(self, message: str, notices: tuple[Notice, ...] = ()) -> None:
        super().__init__(message)
        self.notices = notices


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the desk should tell the editor about a text: a stable code and a
    sentence."""

    code: str
    message: str

    def to_json(self) -> dict[str, str]:
        """The notice as JSON."""
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class CardBook:
    """Which links become cards (``providers``) and the cards known so far, by URL; a
    link with none is a plain link card."""

    providers: Providers = field(default_factory=Providers)
    cards: Mapping[str, Card] = field(default_factory=dict)

    def card(self, link: CardLink) -> Card:
        """The card to show for ``link``."""
        return self.cards.get(link.url) or Card.plain(link, self.providers)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A post rendered for readers, its cards in order, and what the desk should know."""

    html: str
    cards: tuple[Card, ...]
    notices: tuple[Notice, ...] = ()

    def embeds_json(self) -> list[dict[str, Any]]:
        """The cards as stored with the post and listed in its JSON (``embeds``)."""
        return [c.to_json() for c in self.cards]


def card_links(markdown: str, providers: Providers) -> list[CardLink]:
    """The links in a text that become cards, in order, each once."""
    source = _normalise(markdown)
    found = _card_lines(_md.parse(source), source.split("\n"), providers)
    return list(dict.fromkeys(list(found.values())[:MAX_CARDS]))


def render(markdown: str, book: CardBook | None = None) -> Rendered:
    """Render an editor's Markdown to sanitised HTML, with its card lines as cards."""
    if not markdown.strip():
        raise ContentError("post body is empty")
    book = book or CardBook()
    source = _normalise(markdown)
    lines = source.split("\n")
    tokens = _md.parse(source)
    notices = _image_notices(tokens)
    found = _card_lines(tokens, lines, book.providers)
    if len(found) > MAX_CARDS:
        notices.append(Notice("too_many_cards", f"only the first {MAX_CARDS} links to "
                              "videos and social posts become cards; the rest stay links"))
    nonce = secrets.token_hex(8)
    cards: list[Card] = []
    for n, (index, link) in enumerate(list(found.items())[:MAX_CARDS]):
        lines[index] = f"\nBULLETINCARD{nonce}X{n}\n"
        cards.append(book.card(link))
    rendered = _sanitise(_ALIGN_STYLE.sub(r'<\1 class="align-\2">',
                                          _md.render("\n".join(lines))))
    for n, card in enumerate(cards):
        rendered = rendered.replace(f"<p>BULLETINCARD{nonce}X{n}</p>", card_html(card), 1)
    rendered = rendered.strip()
    visible = re.sub(r"<[^>]+>", "", rendered).strip()
    if not visible and not cards and "<img" not in rendered and "<hr" not in rendered:
        raise ContentError("post has no visible content", tuple(notices))
    return Rendered(rendered, tuple(cards), tuple(notices))


def card_notices(cards: tuple[Card, ...]) -> list[Notice]:
    """What the desk should say about cards that are not (yet) complete."""
    notices: list[Notice] = []
    for card in cards:
        name = label(card.link)
        if card.state is CardState.PENDING:
            notices.append(Notice("card_pending", f"{name}: the card is still on its way; "
                                  "the post shows a plain link until it arrives"))
        elif card.state is CardState.LINK and card.problem is not None:
            notices.append(Notice(card.problem.code, f"{name} card: {card.problem.message} "
                                  "(shown as a plain link)"))
    return notices


def _normalise(markdown: str) -> str:
    return markdown.replace("\r\n", "\n").replace("\r", "\n")


def _card_lines(tokens: list[Token], lines: list[str], providers: Providers
                ) -> dict[int, CardLink]:
    """The lines that become cards: each line of a top-level paragraph that is only a
    link to a provider's post (so a link right under its text, with no blank line, is one
    too). A link in a sentence, a list, a quote or code stays a link."""
    found: dict[int, CardLink] = {}
    for token in tokens:
        if token.type != "paragraph_open" or token.level != 0 or token.map is None:
            continue
        first, last = token.map
        for index in range(first, last):
            link = _lone_link(lines[index], providers)
            if link is not None:
                found[index] = link
    return found


def _lone_link(line: str, providers: Providers) -> CardLink | None:
    match = _LONE_LINK.match(line)
    if match is None:
        return None
    if match["text"] is not None and match["text"] != match["href"]:
        return None
    return providers.find(match["angle"] or match["href"] or match["bare"])


def _image_notices(tokens: list[Token]) -> list[Notice]:
    notices: list[Notice] = []
    for token in tokens:
        for child in token.children or []:
            if child.type != "image":
                continue
            src = str(child.attrGet("src") or "")
            if src.lower().startswith("http://"):
                notices.append(Notice("image_not_https", "image removed: http:// images are "
                                      f"not loaded, use https ({_short(src)})"))
            elif not src.lower().startswith("https://"):
                notices.append(Notice("image_not_https", "image removed: only https images "
                                      f"are shown ({_short(src)})"))
    return notices


def _short(url: str) -> str:
    return url if len(url) <= 80 else url[:79] + "…"


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    # Images load from the reader's browser: https only, so no mixed content or tracking
    # over plain http. Table alignment is the one class kept.
    if tag == "img" and attribute == "src":
        return value if value.lower().startswith("https://") else None
    if attribute == "class":
        return value if value in ALIGN_CLASSES else None
    return value


def _sanitise(raw_html: str) -> str:
    cleaned = nh3.clean(
        raw_html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"}, link_rel=LINK_REL,
        attribute_filter=_attribute_filter, strip_comments=True,
    )
    # An <img> whose src was refused would show a broken image: drop it entirely.
    cleaned = re.sub(r"<img(?![^>]*\ssrc=)[^>]*>", "", cleaned)
    # ...and a paragraph left with nothing in it.
    return re.sub(r"<p>\s*</p>\n?", "", cleaned)
