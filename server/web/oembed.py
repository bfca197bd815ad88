"""Calls to oEmbed providers: only to their fixed endpoints (or the configured proxy),
briefly, and for little.

What ``OEmbedFetcher`` guarantees:

- It only ever calls the endpoint of the link's provider (``core/providers.py``), a
  per-provider override or the proxy from the settings, never a URL an editor typed; a
  Mastodon instance only when it is on the allowed list (or through the proxy).
- Each call has a deadline (``oembed_timeout_seconds`` for connecting and reading
  together); an answer is streamed and cut off past its size limit; a redirect is
  followed only to the same scheme, host and port (a few times at most); an oEmbed answer
  must be JSON (an object), a thumbnail an image.
- Every failure is a ``FetchRefused`` with a stable code and a sentence for the desk,
  never an httpx error. No cookies are kept, no environment proxy is used.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from .. import __version__
from ..core import providers as P
from ..core import safejson
from ..core.cards import from_mastodon_status
from ..core.providers import CardLink, Providers
from ..settings import Settings, SettingsError

MAX_REDIRECTS = 3
THUMBNAIL_MAX_BYTES = 5 * 1024 * 1024
JSON_TYPES = ("application/json", "text/json", "application/json+oembed",
              "text/javascript")
USER_AGENT = f"Bulletin/{__version__} (oEmbed cards)"


class FetchRefused(Exception):
    """A call that did not give a usable answer: a stable code and a sentence."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Answer:
    """A provider's answer in oEmbed's terms, and the origin of the endpoint that gave it."""

    data: dict[str, Any]
    origin: str


class OEmbedFetcher:
    """Fetches oEmbed answers and thumbnails within the limits above."""

    def __init__(self, settings: Settings, providers: Providers,
                 client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.providers = providers
        self.overrides = _overrides(settings.oembed_endpoints)
        self.client = client or httpx.AsyncClient(
            follow_redirects=False, trust_env=False,
            timeout=httpx.Timeout(settings.oembed_timeout_seconds),
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
            headers={"User-Agent": USER_AGENT})

    async def aclose(self) -> None:
        """Close the connections."""
        await self.client.aclose()

    def request_for(self, link: CardLink) -> tuple[str, dict[str, str]]:
        """The endpoint to call for ``link`` and its query; FetchRefused when there is
        none the server may call."""
        query = {"url": link.url, "format": "json"}
        if self.settings.oembed_proxy_url:
            return self.settings.oembed_proxy_url, query
        provider = P.provider(link)
        params = dict(provider.params)
        token = self.settings.oembed_meta_token
        if provider.needs_token and token:
            params["access_token"] = token
        if link.provider in self.overrides:
            return self.overrides[link.provider], query | params
        if link.provider == "mastodon":
            if not self.providers.known_instance(link):
                raise FetchRefused("instance_not_allowed", f"{link.host} is not on the list "
                                   "of Mastodon instances (BULLETIN_OEMBED_MASTODON_HOSTS)")
            return P.endpoint(link), {}
        if provider.needs_token and not token:
            raise FetchRefused("token_missing", f"{provider.label} cards need a Meta app "
                               "token (BULLETIN_OEMBED_META_TOKEN) or an oEmbed proxy")
        return P.endpoint(link), query | params

    async def oembed(self, link: CardLink) -> Answer:
        """The oEmbed answer for ``link``."""
        url, query = self.request_for(link)
        body = await self._get(url, query, kind="json", limit=self.settings.oembed_max_bytes)
        try:
            data = safejson.loads(body)
        except ValueError:
            raise FetchRefused("provider_not_json", "the provider's answer is not JSON"
                               ) from None
        if not isinstance(data, dict):
            raise FetchRefused("provider_not_json", "the provider's answer is not an object")
        if not query:  # a Mastodon status, from the instance's own API
            data = from_mastodon_status(data)
        parts = urlsplit(url)
        return Answer(data, f"{parts.scheme}://{parts.netloc}")

    async def thumbnail(self, url: str) -> bytes:
        """The bytes of a thumbnail (already checked to be on an allowed host)."""
        return await self._get(url, {}, kind="image", limit=THUMBNAIL_MAX_BYTES)

    async def _get(self, url: str, query: dict[str, str], *, kind: str, limit: int) -> bytes:
        try:
            async with asyncio.timeout(self.settings.oembed_timeout_seconds):
                return await self._follow(url, query, kind=kind, limit=limit)
        except (TimeoutError, httpx.TimeoutException):
            raise FetchRefused("provider_timeout", "provider did not answer: no answer within "
                               f"{self.settings.oembed_timeout_seconds:g} s") from None
        except httpx.HTTPError as exc:
            raise FetchRefused("provider_unreachable", "provider did not answer: "
                               f"{type(exc).__name__} {exc}".strip()) from None

    async def _follow(self, url: str, query: dict[str, str], *, kind: str, limit: int
                      ) -> bytes:
        request = self.client.build_request(
            "GET", url, params=query or None,
            headers={"Accept": "application/json" if kind == "json" else "image/*"})
        for _hop in range(MAX_REDIRECTS + 1):
            response = await self.client.send(request, stream=True)
            try:
                if response.is_redirect:
                    target = request.url.join(response.headers.get("location", ""))
                    if (target.scheme, target.host, target.port) != (
                            request.url.scheme, request.url.host, request.url.port):
                        raise FetchRefused("provider_redirect", "the provider redirected to "
                                           f"another host ({target.host or '?'}): refused")
                    request = self.client.build_request("GET", target,
                                                        headers=request.headers)
                    continue
                return await _read(response, kind=kind, limit=limit)
            finally:
                await response.aclose()
        raise FetchRefused("provider_redirect", "the provider redirected too many times")


async def _read(response: httpx.Response, *, kind: str, limit: int) -> bytes:
    if response.status_code != 200:
        raise FetchRefused("provider_error",
                           f"the provider answered HTTP {response.status_code}")
    media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "json" and media_type not in JSON_TYPES:
        raise FetchRefused("provider_not_json",
                           f"the provider's answer is not JSON ({media_type or 'no type'})")
    if kind == "image" and not media_type.startswith("image/"):
        raise FetchRefused("thumbnail_not_image", f"the thumbnail is not an image ({media_type})")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    return bytes(body)


def _too_large(limit: int) -> FetchRefused:
    return FetchRefused("provider_too_large", f"the provider's answer is over {limit // 1024} KB")


def _overrides(entries: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in entries:
        name, _, url = entry.partition("=")
        if name not in P.PROVIDERS or name == "mastodon":
            raise SettingsError(f"BULLETIN_OEMBED_ENDPOINTS: no provider {name!r} takes an "
                                f"endpoint (known: {', '.join(sorted(P.PROVIDERS))}, "
                                "but mastodon, whose endpoint is each instance's)")
        found[name] = url
    return found
