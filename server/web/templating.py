"""Server-rendered HTML: the Jinja2 environment (autoescaping everything) and page headers."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from .assets import Assets
from .services import services

TEMPLATES = Path(__file__).resolve().parent / "templates"
# What pages that do not say otherwise may frame: the players that posts from before cards
# embedded directly (the desk shows those posts). Reader pages name only the origins of
# the cards they show (core/cards.py: frame_origins).
FRAME_SOURCES = ("https://www.youtube-nocookie.com", "https://player.vimeo.com")


class Pages:
    """Renders templates with the asset URLs and the filters the pages share."""

    def __init__(self, assets: Assets) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True, undefined=jinja2.StrictUndefined,
            trim_blocks=True, lstrip_blocks=True,
        )
        self.env.globals["asset"] = assets.url
        self.env.globals["preloads"] = assets.preloads
        self.env.filters["isotime"] = isotime
        self.env.filters["clock"] = clock
        self.env.filters["json_script"] = json_script
        self.env.filters["srcset"] = srcset
        self.env.filters["fallback_src"] = fallback_src
        self.env.filters["animation"] = animation
        self.env.globals["photo_sizes"] = PHOTO_SIZES

    def render(self, request: Request, name: str, context: dict[str, Any], *,
               status: int = 200, frame_ancestors: str = "'none'",
               frames: Iterable[str] | None = None,
               headers: dict[str, str] | None = None) -> HTMLResponse:
        """A full page with a strict Content-Security-Policy (``frames``: the origins its
        iframes may come from; None for FRAME_SOURCES)."""
        html = self.env.get_template(name).render(request=request, **context)
        all_headers = {"Content-Security-Policy": csp(frame_ancestors, frames),
                       **(headers or {})}
        return HTMLResponse(html, status, all_headers)


def csp(frame_ancestors: str, frames: Iterable[str] | None = None) -> str:
    """Scripts and styles only from this server; nothing inline can run; frames only from
    ``frames`` (``'none'`` when it is empty)."""
    sources = " ".join(sorted(FRAME_SOURCES if frames is None else frames)) or "'none'"
    return "; ".join([
        "default-src 'self'", "script-src 'self'", "style-src 'self'",
        "img-src 'self' https: data:", f"frame-src {sources}",
        "connect-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'",
        f"frame-ancestors {frame_ancestors}",
    ])


# How wide a post's photo is drawn: the reading column (44rem), or the screen less its margins.
# reader.js uses the same value.
PHOTO_SIZES = "(min-width: 48rem) 44rem, calc(100vw - 2rem)"


def srcset(variants: list[dict[str, Any]], content_type: str) -> str:
    """``srcset`` for one type of a photo's variants: "/media/a-480.webp 480w, …"."""
    return ", ".join(f"{v['url']} {v['width']}w" for v in variants
                     if v["content_type"] == content_type)


def fallback_src(variants: list[dict[str, Any]]) -> str:
    """The ``src`` for browsers without ``srcset``: the JPEG closest to the column's width."""
    jpegs = [v for v in variants if v["content_type"] != "image/webp"] or variants
    return str(min(jpegs, key=lambda v: abs(int(v["width"]) - 960))["url"])


def animation(variants: list[dict[str, Any]]) -> str:
    """The URL of a photo's kept GIF animation, or ""."""
    return next((str(v["url"]) for v in variants if v["content_type"] == "image/gif"), "")


def isotime(value: datetime | None) -> str:
    """A UTC timestamp for ``<time datetime>``: 2026-11-25T18:04:05.123Z, to the
    millisecond as the API's times are, so that scripts that order posts by it (posts
    made in the same second) agree with the server and with posts drawn from events."""
    if value is None:
        return ""
    return _utc(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def clock(value: datetime | None) -> str:
    """The text shown before the script localises it: 18:04 UTC, 25 Nov 2026."""
    if value is None:
        return ""
    return _utc(value).strftime("%H:%M UTC, %-d %b %Y")


def json_script(value: Any) -> Markup:
    """JSON safe inside ``<script type="application/ld+json">``: no ``</script>`` way out."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def origin(request: Request) -> str:
    """The public address: BULLETIN_PUBLIC_URL, or the one the request came in on."""
    configured = services(request).settings.public_url.rstrip("/")
    return configured or str(request.base_url).rstrip("/")
