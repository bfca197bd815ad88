"""What the reader pages say about a stream to machines: schema.org ``LiveBlogPosting``
JSON-LD, share metadata, and the plain-text headline of a post."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..store.eventlog import PostView
from ..store.models import Stream
from .templating import isotime

HEADLINE_CHARS = 110
DESCRIPTION_CHARS = 200

_BLOCK_TAG = re.compile(
    r"</?(?:p|div|li|ul|ol|h[1-6]|blockquote|pre|table|thead|tbody|tr|td|th|figure|figcaption"
    r"|hr|br)\b[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
# Markdown that reads as noise in a plain-text headline.
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MARKS = re.compile(r"^\s{0,3}(#{1,6}\s+|>\s?|[-*+]\s+|\d+[.)]\s+)|[*_`~]+")


def plain_text(rendered_html: str) -> str:
    """The words of a post's sanitised HTML, on one line."""
    words = _TAG.sub("", _BLOCK_TAG.sub(" ", rendered_html))
    return _SPACE.sub(" ", html.unescape(words)).strip()


def headline(body: str, limit: int = HEADLINE_CHARS) -> str:
    """A post's first line, without Markdown, cut at a word before ``limit`` characters."""
    for line in body.splitlines():
        text = _SPACE.sub(" ", _MARKS.sub("", _LINK.sub(r"\1", line))).strip()
        if text:
            return shorten(text, limit)
    return ""


def shorten(text: str, limit: int) -> str:
    """``text`` cut at a word boundary with an ellipsis when longer than ``limit``."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2:]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:-") + "…"


def post_headline(view: PostView) -> str:
    """The headline of a post: its own, else its first line, its photo's caption or alt
    text, its embed, or its number."""
    if view.post.headline:
        return view.post.headline
    text = headline(view.post.body)
    if text:
        return text
    for photo in view.post.media:
        words = headline(str(photo.get("caption") or photo.get("alt") or ""))
        if words:
            return words
    if view.post.embeds:
        first = view.post.embeds[0]
        name = first.get("provider_name") or str(first.get("provider", "media")).title()
        return f"{name} post" if first.get("type") != "card" or not first.get("title") \
            else f"{name}: {first['title']}"
    return f"Update {view.post.id}"


def share_image(views: Sequence[PostView], base: str) -> dict[str, Any] | None:
    """The photo that stands for a page in share cards and search: the newest photo of the
    newest key event that has one, else of the newest post with a photo. Its largest JPEG
    (every platform reads JPEG), with an absolute URL, its size and alt text."""
    def newest_first(candidates: Sequence[PostView]) -> list[PostView]:
        # Only live posts reach the pages: deleted ones are not listed.
        return sorted((v for v in candidates if v.post.media),
                      key=lambda v: v.post.created_at, reverse=True)

    chosen = newest_first([v for v in views if v.post.pinned]) or newest_first(views)
    if not chosen:
        return None
    photo = chosen[0].post.media[-1]
    jpegs = [v for v in photo["variants"] if v["content_type"] == "image/jpeg"]
    best = max(jpegs or photo["variants"], key=lambda v: int(v["width"]))
    url = str(best["url"])
    return {"url": url if url.startswith(("https://", "http://")) else base + url,
            "width": best["width"], "height": best["height"], "alt": photo["alt"]}


def modified(stream: Stream, posts: Sequence[PostView]) -> datetime:
    """When the stream or any shown post last changed."""
    times = [stream.updated_at, *(v.post.edited_at or v.post.created_at for v in posts)]
    return max(times)


def live_blog_posting(stream: Stream, posts: Sequence[PostView], *, page_url: str,
                      post_url: str) -> dict[str, Any]:
    """The page's ``LiveBlogPosting``: the story, and one ``BlogPosting`` per shown post.

    ``datePublished`` is when the stream first went live and never changes; ``post_url``
    is a format string with ``{id}``.
    """
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "LiveBlogPosting",
        "@id": page_url,
        "url": page_url,
        "headline": stream.title,
        "description": stream.description or stream.title,
        "datePublished": isotime(stream.started_at or stream.created_at),
        "dateModified": isotime(modified(stream, posts)),
        "coverageStartTime": isotime(stream.started_at or stream.created_at),
    }
    if stream.status == "ended" and stream.ended_at is not None:
        data["coverageEndTime"] = isotime(stream.ended_at)
    data["liveBlogUpdate"] = [_blog_posting(v, post_url) for v in posts]
    return data


def with_image(data: dict[str, Any], image: dict[str, Any] | None) -> dict[str, Any]:
    """A schema.org item with the page's photo as its ``image``."""
    if image is None:
        return data
    return data | {"image": {"@type": "ImageObject", "url": image["url"],
                             "width": image["width"], "height": image["height"]}}


def _blog_posting(view: PostView, post_url: str) -> dict[str, Any]:
    post = view.post
    item: dict[str, Any] = {
        "@type": "BlogPosting",
        "headline": post_headline(view),
        "articleBody": plain_text(post.html),
        "datePublished": isotime(post.created_at),
        "dateModified": isotime(post.edited_at or post.created_at),
        "url": post_url.format(id=post.id),
    }
    if view.contributors:
        item["author"] = [
            {"@type": "Person", "name": p.name} | ({"jobTitle": p.description}
                                                  if p.description else {})
            for p in view.contributors]
    elif view.author is not None:
        item["author"] = {"@type": "Person", "name": view.author.display_name}
    return item
