"""Markdown to sanitised HTML, with lone links to known video and social posts as embeds."""

from __future__ import annotations

import html
import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

_md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])

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


class ContentError(ValueError):
    """Raised for content that cannot be posted (empty, or nothing left once sanitised)."""


@dataclass(frozen=True, slots=True)
class Embed:
    """A video or social post that a lone link in a post points to."""

    provider: str
    id: str
    url: str

    def to_json(self) -> dict[str, str]:
        """The embed as JSON for apps that render it natively."""
        return {"provider": self.provider, "id": self.id, "url": self.url}


@dataclass(frozen=True, slots=True)
class Rendered:
    """A post rendered for readers."""

    html: str
    embeds: tuple[Embed, ...]


_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_DIGITS = re.compile(r"^[0-9]{1,25}$")
_X_USER = re.compile(r"^[A-Za-z0-9_]{1,15}$")
_INSTAGRAM_CODE = re.compile(r"^[A-Za-z0-9_-]{5,40}$")
_YOUTUBE_HOSTS = {"youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com"}
_VIMEO_HOSTS = {"vimeo.com", "www.vimeo.com"}
_X_HOSTS = {"x.com", "www.x.com", "twitter.com", "www.twitter.com", "mobile.twitter.com",
            "mobile.x.com"}
_INSTAGRAM_HOSTS = {"instagram.com", "www.instagram.com"}


def find_embed(url: str) -> Embed | None:
    """The embed a URL points to, if its host is a known provider's."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or parts.username or parts.port:
        return None
    host = (parts.hostname or "").lower()
    segments = [s for s in parts.path.split("/") if s]
    if host in _YOUTUBE_HOSTS:
        if parts.path == "/watch":
            ids = parse_qs(parts.query).get("v", [])
            video = ids[0] if len(ids) == 1 else ""
        elif len(segments) == 2 and segments[0] in ("shorts", "live", "embed"):
            video = segments[1]
        else:
            return None
        return _youtube(video)
    if host == "youtu.be" and len(segments) == 1:
        return _youtube(segments[0])
    if host in _VIMEO_HOSTS and len(segments) == 1 and _DIGITS.match(segments[0]):
        return Embed("vimeo", segments[0], f"https://vimeo.com/{segments[0]}")
    if (host in _X_HOSTS and len(segments) == 3 and segments[1] == "status"
            and _X_USER.match(segments[0]) and _DIGITS.match(segments[2])):
        return Embed("x", segments[2], f"https://x.com/{segments[0]}/status/{segments[2]}")
    if (host in _INSTAGRAM_HOSTS and len(segments) == 2 and segments[0] in ("p", "reel")
            and _INSTAGRAM_CODE.match(segments[1])):
        return Embed("instagram", segments[1],
                     f"https://www.instagram.com/{segments[0]}/{segments[1]}/")
    return None


def _youtube(video: str) -> Embed | None:
    if not _YOUTUBE_ID.match(video):
        return None
    return Embed("youtube", video, f"https://www.youtube.com/watch?v={video}")


def embed_html(embed: Embed) -> str:
    """The markup for an embed, built only from validated, escaped values."""
    url = html.escape(embed.url, quote=True)
    ident = html.escape(embed.id, quote=True)
    head = (f'<figure class="embed embed-{embed.provider}" data-provider="{embed.provider}" '
            f'data-id="{ident}">')
    if embed.provider in ("youtube", "vimeo"):
        src, name = (
            (f"https://www.youtube-nocookie.com/embed/{ident}", "YouTube")
            if embed.provider == "youtube" else
            (f"https://player.vimeo.com/video/{ident}", "Vimeo"))
        return (f'{head}<iframe src="{src}" title="{name} video" loading="lazy" '
                'allow="accelerometer; encrypted-media; gyroscope; picture-in-picture; '
                'fullscreen" referrerpolicy="strict-origin-when-cross-origin" '
                'sandbox="allow-scripts allow-same-origin allow-presentation allow-popups">'
                f'</iframe><figcaption><a href="{url}" rel="{LINK_REL}">Watch on {name}</a>'
                "</figcaption></figure>")
    name = "X" if embed.provider == "x" else "Instagram"
    return (f'{head}<blockquote cite="{url}"><a href="{url}" rel="{LINK_REL}">'
            f"View post on {name}</a></blockquote></figure>")


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
    return re.sub(r"<img(?![^>]*\ssrc=)[^>]*>", "", cleaned)


def _lone_url(children: list[Token]) -> str | None:
    # markdown-it gives a bare URL as one text token, and <url> or [url](url) as a link
    # whose text is the URL itself.
    if len(children) == 1 and children[0].type == "text":
        text = children[0].content.strip()
        return text if re.fullmatch(r"https?://\S+", text) else None
    if [c.type for c in children] == ["link_open", "text", "link_close"]:
        href = str(children[0].attrGet("href") or "")
        return href if children[1].content.strip() == href else None
    return None


def render(markdown: str) -> Rendered:
    """Render an editor's Markdown to sanitised HTML, turning lone links into embed blocks."""
    if not markdown.strip():
        raise ContentError("post body is empty")
    source = markdown.replace("\r\n", "\n").replace("\r", "\n")
    lines = source.split("\n")
    nonce = secrets.token_hex(8)
    embeds: list[Embed] = []
    tokens = _md.parse(source)
    for i, token in enumerate(tokens[:-1]):
        inline = tokens[i + 1]
        # Only top-level paragraphs: a link in a list, a quote or a sentence stays a link.
        if token.type != "paragraph_open" or token.level != 0 or token.map is None:
            continue
        url = _lone_url(inline.children or [])
        embed = None if url is None else find_embed(url)
        if embed is None:
            continue
        first, last = token.map
        lines[first:last] = [f"BULLETINEMBED{nonce}X{len(embeds)}"] + [""] * (last - first - 1)
        embeds.append(embed)
    rendered = _sanitise(_ALIGN_STYLE.sub(r'<\1 class="align-\2">',
                                          _md.render("\n".join(lines))))
    for n, embed in enumerate(embeds):
        rendered = rendered.replace(f"<p>BULLETINEMBED{nonce}X{n}</p>", embed_html(embed), 1)
    rendered = rendered.strip()
    visible = re.sub(r"<[^>]+>", "", rendered).strip()
    if not visible and not embeds and "<img" not in rendered and "<hr" not in rendered:
        raise ContentError("post has no visible content")
    return Rendered(rendered, tuple(embeds))
