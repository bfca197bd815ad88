"""The video and social providers whose links become cards. No I/O.

For each provider: which links are its posts (``Providers.find`` turns a URL an editor
typed into a ``CardLink`` with a canonical URL built from validated parts, never the
typed text), its fixed oEmbed endpoint, the hosts its author links and thumbnails may
be on, and the player or widget a reader may load on click (``embed_url``), with the
origins the page's Content-Security-Policy must then allow (``frame_origins``).

Nothing here is taken from the link beyond the parts the patterns accept, so a card can
only ever make the server call a provider's own endpoint, and a reader's browser only
ever frame a provider's own player. Mastodon instances are any host: only the allowed
instances (a setting) are fetched directly; others only through the oEmbed proxy, with no
thumbnail and no player, since their host is whatever the editor typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit


@dataclass(frozen=True, slots=True)
class Provider:
    """A provider and what the server and the reader's page may ask of it."""

    name: str
    label: str
    # "video" (16:9 player), "vertical" (9:16 player) or "post" (a social post's widget).
    shape: str
    # The oEmbed endpoint; "" when there is none to call directly (Mastodon's is per host).
    endpoint: str
    # Extra query parameters for the endpoint (no script, do-not-track).
    params: tuple[tuple[str, str], ...] = ()
    # The endpoint takes the Meta app token (Facebook, Instagram, Threads).
    needs_token: bool = False
    # Hosts the provider's own pages are on: author links must point there.
    page_hosts: frozenset[str] = frozenset()
    # Hosts thumbnails may be fetched from; an entry starting with "." is a domain suffix.
    media_hosts: tuple[str, ...] = ()
    # Origins its click-to-load player or widget is framed from.
    frame_origins: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CardLink:
    """A link to one provider's post, as the server rebuilt it from validated parts."""

    provider: str
    id: str
    url: str
    # The instance of a Mastodon link ("" for every other provider).
    host: str = ""


_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_DIGITS = re.compile(r"^[0-9]{1,25}$")
_X_USER = re.compile(r"^[A-Za-z0-9_]{1,15}$")
_CODE = re.compile(r"^[A-Za-z0-9_-]{5,64}$")
_HANDLE = re.compile(r"^[A-Za-z0-9_.]{1,64}$")
_BSKY_ACTOR = re.compile(r"^(?:did:(?:plc|web):[A-Za-z0-9._:%-]{1,200}|"
                         r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)$")
_BSKY_RKEY = re.compile(r"^[A-Za-z0-9._~:-]{1,512}$")
_BSKY_URI = re.compile(r"^at://(did:(?:plc|web):[A-Za-z0-9._:%-]{1,200})"
                       r"/app\.bsky\.feed\.post/([A-Za-z0-9._~:-]{1,512})$")
_FB_SEGMENT = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_HOST = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
                   r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$")
_META_GRAPH = "https://graph.facebook.com/v21.0"
_META_MEDIA = (".cdninstagram.com", ".fbcdn.net")

PROVIDERS: dict[str, Provider] = {p.name: p for p in (
    Provider("youtube", "YouTube", "video", "https://www.youtube.com/oembed",
             page_hosts=frozenset({"youtube.com", "www.youtube.com", "m.youtube.com"}),
             media_hosts=("i.ytimg.com", "i9.ytimg.com", "img.youtube.com"),
             frame_origins=("https://www.youtube-nocookie.com",)),
    Provider("vimeo", "Vimeo", "video", "https://vimeo.com/api/oembed.json",
             params=(("dnt", "1"),),
             page_hosts=frozenset({"vimeo.com", "www.vimeo.com"}),
             media_hosts=("i.vimeocdn.com",), frame_origins=("https://player.vimeo.com",)),
    Provider("tiktok", "TikTok", "vertical", "https://www.tiktok.com/oembed",
             page_hosts=frozenset({"tiktok.com", "www.tiktok.com"}),
             media_hosts=(".tiktokcdn.com", ".tiktokcdn-us.com", ".tiktokcdn-eu.com"),
             frame_origins=("https://www.tiktok.com",)),
    Provider("x", "X", "post", "https://publish.twitter.com/oembed",
             params=(("omit_script", "1"), ("dnt", "true")),
             page_hosts=frozenset({"x.com", "www.x.com", "twitter.com", "www.twitter.com"}),
             media_hosts=("pbs.twimg.com",), frame_origins=("https://platform.twitter.com",)),
    Provider("instagram", "Instagram", "post", f"{_META_GRAPH}/instagram_oembed",
             params=(("omitscript", "true"),), needs_token=True,
             page_hosts=frozenset({"instagram.com", "www.instagram.com"}),
             media_hosts=_META_MEDIA, frame_origins=("https://www.instagram.com",)),
    Provider("facebook", "Facebook", "post", f"{_META_GRAPH}/oembed_post",
             params=(("omitscript", "true"),), needs_token=True,
             page_hosts=frozenset({"facebook.com", "www.facebook.com", "m.facebook.com"}),
             media_hosts=_META_MEDIA, frame_origins=("https://www.facebook.com",)),
    Provider("threads", "Threads", "post", "https://graph.threads.net/v1.0/oembed",
             needs_token=True,
             page_hosts=frozenset({"threads.net", "www.threads.net", "threads.com",
                                   "www.threads.com"}),
             media_hosts=_META_MEDIA,
             # The widget moved from threads.net to threads.com, which it redirects to.
             frame_origins=("https://www.threads.com", "https://www.threads.net")),
    Provider("bluesky", "Bluesky", "post", "https://embed.bsky.app/oembed",
             page_hosts=frozenset({"bsky.app"}), media_hosts=("cdn.bsky.app",),
             frame_origins=("https://embed.bsky.app",)),
    Provider("mastodon", "Mastodon", "post", ""),
)}

# Instances fetched directly when BULLETIN_OEMBED_MASTODON_HOSTS is not set: large general
# ones and the ones journalists use.
DEFAULT_MASTODON_HOSTS = ("mastodon.social", "mastodon.online", "mstdn.social", "mas.to",
                          "journa.host", "newsie.social", "mastodon.world",
                          "infosec.exchange")
_YOUTUBE_HOSTS = {"youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com"}
_X_HOSTS = {"x.com", "www.x.com", "twitter.com", "www.twitter.com", "mobile.twitter.com",
            "mobile.x.com"}
_TIKTOK_HOSTS = {"tiktok.com", "www.tiktok.com", "m.tiktok.com"}
_FB_HOSTS = {"facebook.com", "www.facebook.com", "m.facebook.com", "web.facebook.com"}
_THREADS_HOSTS = {"threads.net", "www.threads.net", "threads.com", "www.threads.com"}


@dataclass(frozen=True, slots=True)
class Providers:
    """The providers as configured: which Mastodon instances are known, and whether a
    proxy fetches for every link (so that any instance can be asked through it)."""

    mastodon_hosts: frozenset[str] = frozenset(DEFAULT_MASTODON_HOSTS)
    via_proxy: bool = False

    def find(self, url: str) -> CardLink | None:
        """The provider post a URL links to, or None."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError:
            return None
        if parts.scheme not in ("http", "https") or parts.username or parts.password:
            return None
        if port is not None:
            return None
        host = (parts.hostname or "").lower().rstrip(".")
        segments = [s for s in parts.path.split("/") if s]
        query = parse_qs(parts.query)
        for match in (_youtube, _vimeo, _tiktok, _x, _instagram, _facebook, _threads,
                      _bluesky):
            found = match(host, segments, query)
            if found is not None:
                return found
        return self._mastodon(host, segments)

    def _mastodon(self, host: str, segments: list[str]) -> CardLink | None:
        if not _HOST.match(host) or not (host in self.mastodon_hosts or self.via_proxy):
            return None
        if len(segments) == 2 and segments[0].startswith("@"):
            user, status = segments[0][1:], segments[1]
        elif len(segments) == 4 and segments[0] == "users" and segments[2] == "statuses":
            user, status = segments[1], segments[3]
        else:
            return None
        # A remote account seen through this instance: @user@its.home
        name, _, home = user.partition("@")
        if not _HANDLE.match(name) or (home and not _HOST.match(home.lower())):
            return None
        if not _DIGITS.match(status):
            return None
        return CardLink("mastodon", status, f"https://{host}/@{user}/{status}", host)

    def known_instance(self, link: CardLink) -> bool:
        """Whether a Mastodon link's instance is one the server may call itself."""
        return link.host in self.mastodon_hosts


def provider(link: CardLink) -> Provider:
    """The provider of a link."""
    return PROVIDERS[link.provider]


def label(link: CardLink) -> str:
    """The provider's name as readers see it."""
    return PROVIDERS[link.provider].label


def endpoint(link: CardLink) -> str:
    """The provider's own oEmbed (or, for Mastodon, status) endpoint for the link."""
    if link.provider == "mastodon":
        return f"https://{link.host}/api/v1/statuses/{link.id}"
    if link.provider == "facebook" and _facebook_video(link.url):
        return f"{_META_GRAPH}/oembed_video"
    return PROVIDERS[link.provider].endpoint


def media_hosts(link: CardLink, providers: Providers) -> tuple[str, ...]:
    """Hosts the link's thumbnail may be fetched from (``.suffix`` for a domain)."""
    if link.provider == "mastodon":
        return (link.host, f".{link.host}") if providers.known_instance(link) else ()
    return PROVIDERS[link.provider].media_hosts


def page_hosts(link: CardLink) -> frozenset[str]:
    """Hosts the link's author pages may be on."""
    if link.provider == "mastodon":
        return frozenset({link.host})
    return PROVIDERS[link.provider].page_hosts


def host_allowed(host: str, allowed: tuple[str, ...] | frozenset[str]) -> bool:
    """Whether ``host`` is one of ``allowed`` (entries starting with "." are suffixes)."""
    host = host.lower().rstrip(".")
    return any(host.endswith(a) if a.startswith(".") else host == a for a in allowed)


def embed_url(link: CardLink, providers: Providers, *, bluesky_uri: str = "") -> str:
    """The provider's own player or widget for the link ("" when there is none to offer):
    loaded in a sandboxed frame only when the reader asks."""
    p, ident = link.provider, quote(link.id, safe="")
    if p == "youtube":
        return f"https://www.youtube-nocookie.com/embed/{ident}?autoplay=1"
    if p == "vimeo":
        return f"https://player.vimeo.com/video/{ident}?dnt=1&autoplay=1"
    if p == "tiktok":
        return f"https://www.tiktok.com/embed/v2/{ident}"
    if p == "x":
        return f"https://platform.twitter.com/embed/Tweet.html?id={ident}&dnt=true"
    if p == "instagram":
        return f"{link.url}embed/"
    if p == "facebook":
        plugin = "video" if _facebook_video(link.url) else "post"
        return (f"https://www.facebook.com/plugins/{plugin}.php?href="
                f"{quote(link.url, safe='')}&show_text=true")
    if p == "threads":
        return f"{link.url}/embed"
    if p == "bluesky":
        actor, rkey = link.id.split("/", 1)
        found = _BSKY_URI.match(bluesky_uri)
        if found and found.group(2) == rkey:
            actor = found.group(1)
        if not actor.startswith("did:"):
            return ""  # the player needs the account's DID, which only oEmbed tells
        return f"https://embed.bsky.app/embed/{actor}/app.bsky.feed.post/{quote(rkey)}"
    if p == "mastodon" and providers.known_instance(link):
        return f"{link.url}/embed"
    return ""


def embed_origins(link: CardLink, src: str) -> tuple[str, ...]:
    """The origins the page must allow in ``frame-src`` to show ``src``."""
    if not src:
        return ()
    if link.provider == "mastodon":
        return (f"https://{link.host}",)
    return PROVIDERS[link.provider].frame_origins


def bluesky_uri(html: str) -> str:
    """The ``at://`` URI a Bluesky oEmbed's markup names ("" if none)."""
    found = re.search(r'data-bluesky-uri="(at://[^"]{1,800})"', html)
    return found.group(1) if found and _BSKY_URI.match(found.group(1)) else ""


# --- the patterns ------------------------------------------------------------------------

Query = dict[str, list[str]]


def _youtube(host: str, segments: list[str], query: Query) -> CardLink | None:
    video = ""
    if host in _YOUTUBE_HOSTS:
        if segments == ["watch"]:
            ids = query.get("v", [])
            video = ids[0] if len(ids) == 1 else ""
        elif len(segments) == 2 and segments[0] in ("shorts", "live", "embed"):
            video = segments[1]
    elif host == "youtu.be" and len(segments) == 1:
        video = segments[0]
    if not _YOUTUBE_ID.match(video):
        return None
    return CardLink("youtube", video, f"https://www.youtube.com/watch?v={video}")


def _vimeo(host: str, segments: list[str], query: Query) -> CardLink | None:
    if host in ("vimeo.com", "www.vimeo.com") and len(segments) == 1:
        video = segments[0]
    elif host == "player.vimeo.com" and len(segments) == 2 and segments[0] == "video":
        video = segments[1]
    else:
        return None
    if not _DIGITS.match(video):
        return None
    return CardLink("vimeo", video, f"https://vimeo.com/{video}")


def _tiktok(host: str, segments: list[str], query: Query) -> CardLink | None:
    if (host not in _TIKTOK_HOSTS or len(segments) != 3 or not segments[0].startswith("@")
            or segments[1] != "video"):
        return None
    user, video = segments[0][1:], segments[2]
    if not _HANDLE.match(user) or not _DIGITS.match(video):
        return None
    return CardLink("tiktok", video, f"https://www.tiktok.com/@{user}/video/{video}")


def _x(host: str, segments: list[str], query: Query) -> CardLink | None:
    # /user/status/id, optionally followed by /photo/1 or /video/1 (the same post).
    if host not in _X_HOSTS or len(segments) not in (3, 5) or segments[1] != "status":
        return None
    if len(segments) == 5 and (segments[3] not in ("photo", "video") or
                               not segments[4].isdigit()):
        return None
    user, status = segments[0], segments[2]
    if not _X_USER.match(user) or not _DIGITS.match(status):
        return None
    return CardLink("x", status, f"https://x.com/{user}/status/{status}")


def _instagram(host: str, segments: list[str], query: Query) -> CardLink | None:
    if host not in ("instagram.com", "www.instagram.com"):
        return None
    if len(segments) == 3 and _HANDLE.match(segments[0]):
        segments = segments[1:]  # /user/p/code/, the form the app shares
    if len(segments) != 2 or segments[0] not in ("p", "reel", "tv"):
        return None
    kind, code = segments
    if not _CODE.match(code):
        return None
    kind = "reel" if kind == "reel" else "p"
    return CardLink("instagram", code, f"https://www.instagram.com/{kind}/{code}/")


def _facebook(host: str, segments: list[str], query: Query) -> CardLink | None:
    path = ""
    if host == "fb.watch" and len(segments) == 1 and _FB_SEGMENT.match(segments[0]):
        return CardLink("facebook", f"fb.watch/{segments[0]}",
                        f"https://fb.watch/{segments[0]}/")
    if host not in _FB_HOSTS or not all(_FB_SEGMENT.match(s) for s in segments):
        return None
    if len(segments) == 3 and segments[1] in ("posts", "videos"):
        path = "/".join(segments)
    elif len(segments) == 2 and segments[0] == "reel" and _DIGITS.match(segments[1]):
        path = "/".join(segments)
    elif len(segments) == 3 and segments[0] == "share" and segments[1] in ("p", "v", "r"):
        path = "/".join(segments)
    elif segments in (["watch"], ["permalink.php"], ["story.php"], ["photo.php"], ["photo"]):
        keys = {"watch": ("v",), "permalink.php": ("story_fbid", "id"),
                "story.php": ("story_fbid", "id"), "photo.php": ("fbid",),
                "photo": ("fbid",)}[segments[0]]
        values = [query.get(k, [""])[0] for k in keys]
        if not all(_DIGITS.match(v) or _FB_SEGMENT.match(v) for v in values):
            return None
        path = segments[0] + "?" + "&".join(f"{k}={v}" for k, v in zip(keys, values,
                                                                         strict=True))
    if not path:
        return None
    return CardLink("facebook", path, f"https://www.facebook.com/{path}")


def _facebook_video(url: str) -> bool:
    return any(part in url for part in ("/videos/", "/watch?", "/reel/", "/share/v/",
                                        "/share/r/", "fb.watch/"))


def _threads(host: str, segments: list[str], query: Query) -> CardLink | None:
    if (host not in _THREADS_HOSTS or len(segments) != 3 or not segments[0].startswith("@")
            or segments[1] != "post"):
        return None
    user, code = segments[0][1:], segments[2]
    if not _HANDLE.match(user) or not _CODE.match(code):
        return None
    return CardLink("threads", code, f"https://www.threads.com/@{user}/post/{code}")


def _bluesky(host: str, segments: list[str], query: Query) -> CardLink | None:
    if (host != "bsky.app" or len(segments) != 4 or segments[0] != "profile"
            or segments[2] != "post"):
        return None
    actor, rkey = segments[1], segments[3]
    if not _BSKY_ACTOR.match(actor) or not _BSKY_RKEY.match(rkey):
        return None
    return CardLink("bluesky", f"{actor}/{rkey}",
                    f"https://bsky.app/profile/{actor}/post/{rkey}")
