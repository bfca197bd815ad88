"""The typed settings object, read from ``BULLETIN_*`` environment variables."""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .durations import parse_duration

log = logging.getLogger("bulletin.settings")

PREFIX = "BULLETIN_"
SECRET_FILE_NAME = ".bulletin-secret"
MIN_SECRET_LENGTH = 32
# The API token scopes (core/access.py SCOPES, which the settings may not import; a test
# keeps the two equal).
TOKEN_SCOPES = ("read", "write", "admin")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
LOG_FORMATS = ("", "json", "text")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _default_database_url() -> str:
    return f"sqlite+aiosqlite:///{Path.cwd() / 'bulletin.db'}"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the server can be configured with; defaults run on a bare laptop."""

    database_url: str = field(default_factory=_default_database_url)
    # PostgreSQL connections each process keeps (and up to twice as many more under load).
    database_pool_size: int = 10
    broker_url: str = "memory://"
    secret_key: str = ""
    # Where a generated development secret is kept between runs.
    secret_key_file: str = SECRET_FILE_NAME
    production: bool = False
    # Serve the browser's JavaScript minified (comments and spaces out); 0 serves the
    # sources as written in client_js/, for debugging in the browser.
    minify_assets: bool = True
    # The address readers use (https://live.example.com): canonical links, share cards and
    # JSON-LD. Empty: the address each request came in on.
    public_url: str = ""
    # Origins allowed to open WebSocket connections and post forms; the server's own
    # origin is always allowed.
    allowed_origins: tuple[str, ...] = ()
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses or
    # networks, "*" for any): the client address then comes from the proxy's header.
    forwarded_allow_ips: tuple[str, ...] = ("127.0.0.1", "::1")
    max_body_bytes: int = 64 * 1024
    # Where uploaded photos are kept: file:///path (empty: a "media" folder beside the
    # SQLite database, or in the working directory), or s3://bucket/prefix for a bucket
    # that several machines share.
    media_url: str = ""
    # The S3-compatible service of an s3:// media_url: its endpoint (empty: AWS itself; set
    # it for MinIO, R2 or another server), the bucket's region, and the keys (both empty:
    # the client library's own chain, AWS_* variables then the machine's role).
    media_s3_endpoint_url: str = ""
    media_s3_region: str = "us-east-1"
    media_s3_access_key_id: str = ""
    media_s3_secret_access_key: str = field(default="", repr=False)
    # Where readers fetch the files from, a CDN or the bucket's own address: the URL under
    # which each file's name is found. Empty: /media/ on this server for file://, the
    # bucket's address for s3:// ({endpoint}/{bucket}/{prefix}/, or AWS's virtual host).
    media_public_url: str = ""
    # An upload above this many bytes is refused (413) while it streams in.
    max_upload_bytes: int = 25 * 1024 * 1024
    # An image with more pixels than this is refused (413) before it is decoded.
    max_image_pixels: int = 50_000_000
    # Photos processed at once per server process (each in a worker process, web/imaging.py).
    media_workers: int = 2
    max_post_chars: int = 20_000
    page_size: int = 20
    max_page_size: int = 100
    events_page_size: int = 500
    # Editor writes per second per editor (token bucket), and its burst.
    write_rate: float = 10.0
    write_burst: int = 40
    # Failed sign-ins per minute per client address before 429.
    auth_failures_per_minute: int = 10
    idempotency_ttl_hours: int = 24
    # Editor desk sign-ins end after this long without a request, and at the latest
    # this long after signing in.
    session_idle_minutes: int = 12 * 60
    session_max_hours: int = 7 * 24
    # Live delivery. A resume further back than replay_limit events gets "reset".
    replay_limit: int = 1000
    # Newest events kept in memory per followed stream, to serve resumes without a query.
    window_events: int = 256
    # Unsent bytes a connection may hold before it is closed as slow (it then resumes).
    send_queue_bytes: int = 1024 * 1024
    # Streams one connection may follow.
    max_subscriptions: int = 100
    # Largest frame a client may send; larger ones close the connection with 1009.
    max_frame_bytes: int = 4096
    # Idle seconds before a heartbeat frame (or SSE comment) is sent.
    heartbeat_seconds: float = 15.0
    # WebSocket ping interval, and how long a pong may take before the peer is dropped.
    ping_seconds: float = 20.0
    # Seconds a stopping server waits for connections and requests to finish; past it the
    # process exits whatever is still running.
    shutdown_seconds: float = 10.0
    # With --workers: a worker whose event loop has not beaten for this long is replaced.
    worker_timeout_seconds: float = 30.0
    # Level of Bulletin's own loggers (bulletin.*) and uvicorn's: critical, error,
    # warning, info, debug (or trace, uvicorn's finest).
    log_level: str = "info"
    # How log lines are written to stderr: "json" (one object a line), "text" (for
    # people), or empty: text when stderr is a terminal, json otherwise.
    log_format: str = ""
    # Seconds between the summary lines each process writes (readers, connects,
    # disconnects, events, evictions, resets in the interval).
    log_summary_seconds: float = 60.0
    # --- limits on what one client can make the server do -------------------------------
    # Frames a WebSocket connection may send per second (token bucket, with this burst:
    # an app may subscribe to max_subscriptions streams at once); a client over it is
    # closed with 4009 too_many_requests and retries after a delay.
    frames_per_second: float = 20.0
    frame_burst: int = 200
    # The same across every connection from one client address (many readers may share
    # one address behind a carrier's NAT, and all reconnect at once after a deploy).
    address_frames_per_second: float = 500.0
    address_frame_burst: int = 2000
    # Fragments one incoming WebSocket message may arrive in (its bytes are bounded by
    # max_frame_bytes); more close the connection with 1009.
    max_fragments: int = 64
    # Seconds a closed connection may take to take its last bytes before it is aborted.
    close_grace_seconds: float = 5.0
    # Database reads of stream windows and replays in flight per process, and how many
    # more may wait for one; past that a subscribe is answered with an "unavailable" error.
    max_loads: int = 8
    max_queued_loads: int = 1000
    # HTTP as exposed without a proxy: header bytes (431 above), seconds to receive the
    # headers and then the body of a request, and idle seconds between keep-alive requests.
    max_header_bytes: int = 16 * 1024
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    keepalive_seconds: float = 5.0
    # Host names this server answers to ("live.example.com"); empty: any. In production
    # either this or public_url must be set, so that a Host header cannot set the links
    # in pages that caches share.
    allowed_hosts: tuple[str, ...] = ()
    # Seconds between checks that the tokens and sessions behind open connections are
    # still valid (revocations also reach every process at once through the broker).
    credential_check_seconds: float = 5.0
    # Seconds between the lists of editors' presence each process sends the others; a
    # process's list is dropped 3 times that long after it last came (a process that died).
    presence_seconds: float = 5.0
    # Seconds between the reader counts each process sends the others (and the live
    # "readers" frames to editors); dropped, likewise, after 3 times that.
    reader_count_seconds: float = 2.0
    # What a new API token gets when its creator names no scope (read, write or admin) and
    # no lifetime ("90d", "12h", "30m"; empty: it never expires).
    token_default_scope: str = "write"
    token_default_expires_in: str = ""
    # Failed sign-ins per minute for one account (whatever the address) before it waits;
    # a browser that signed in to the account before keeps its own allowance.
    account_failures_per_minute: int = 5
    # --- cards: links to videos and social posts (oEmbed) -------------------------------
    # Fetch cards at all (0: every such link shows as a plain link card, and the server
    # calls no provider).
    oembed_enabled: bool = True
    # One oEmbed endpoint for every link instead of each provider's own (Iframely, Embedly
    # or a newsroom's service), called as GET {url}?url=<link>&format=json.
    oembed_proxy_url: str = ""
    # A Meta app access token ("app-id|client-token") for Facebook, Instagram and Threads
    # cards; without it (and without a proxy) their links stay plain link cards.
    oembed_meta_token: str = field(default="", repr=False)
    # Mastodon instances the server may ask itself (empty: the built-in list of large
    # ones, see core/providers.py); others only through the proxy.
    oembed_mastodon_hosts: tuple[str, ...] = ()
    # Per-provider endpoint overrides, "provider=url" (a newsroom's own relay; tests).
    oembed_endpoints: tuple[str, ...] = ()
    # Seconds one provider call (connect and read) may take, and how long publishing waits
    # for cards before it goes ahead with plain link cards that fill in later.
    oembed_timeout_seconds: float = 3.0
    oembed_wait_seconds: float = 2.0
    # Largest oEmbed answer read (bytes; a larger one is refused).
    oembed_max_bytes: int = 512 * 1024
    # --- metrics: GET /metrics in Prometheus's text format (docs/monitoring.md) ----------
    # Serve them at all (0: no /metrics, and nothing measured).
    metrics: bool = True
    # Who may read them besides loopback: addresses or networks (10.0.0.0/8,192.168.1.5),
    # as the client address is known after trusted proxies (forwarded_allow_ips); anyone
    # else gets a 404.
    metrics_allow: tuple[str, ...] = ()
    # A port of their own (on the server's host), and then not on the main port; 0: the
    # main port.
    metrics_port: int = 0
    # Streams with the most readers that get series of their own (the rest are summed).
    metrics_streams: int = 20

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``BULLETIN_*`` variables (``os.environ`` by default)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = PREFIX + f.name.upper()
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(name, f.type, raw)
        values.update(overrides)
        return cls(**values).validated()

    def validated(self) -> Settings:
        """Check values that the type alone does not; raise SettingsError naming the variable."""
        if not self.database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise SettingsError(
                "BULLETIN_DATABASE_URL must start with sqlite+aiosqlite:// or "
                f"postgresql+asyncpg://, got {self.database_url!r}"
            )
        if not self.broker_url.startswith(("memory://", "redis://", "rediss://")):
            raise SettingsError(
                f"BULLETIN_BROKER_URL: unsupported broker {self.broker_url!r}; "
                "use memory:// (one process) or redis://host:port/db (several)"
            )
        if self.public_url and not self.public_url.startswith(("http://", "https://")):
            raise SettingsError(
                f"BULLETIN_PUBLIC_URL must start with http:// or https://, got {self.public_url!r}")
        self._validate_media()
        self._validate_oembed()
        self._validate_metrics()
        for name in ("max_body_bytes", "max_upload_bytes", "max_image_pixels",
                     "media_workers", "max_post_chars", "page_size", "max_page_size",
                     "events_page_size", "write_burst", "replay_limit", "window_events",
                     "send_queue_bytes", "max_subscriptions", "max_frame_bytes",
                     "heartbeat_seconds", "ping_seconds", "shutdown_seconds",
                     "worker_timeout_seconds",
                     "session_idle_minutes", "session_max_hours", "frames_per_second",
                     "frame_burst", "address_frames_per_second", "address_frame_burst",
                     "max_fragments", "close_grace_seconds", "max_loads",
                     "max_queued_loads", "max_header_bytes", "header_timeout_seconds",
                     "body_timeout_seconds", "keepalive_seconds",
                     "credential_check_seconds", "account_failures_per_minute",
                     "presence_seconds", "reader_count_seconds", "log_summary_seconds"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{PREFIX}{name.upper()} must be positive")
        if self.log_level.lower() not in LOG_LEVELS:
            raise SettingsError(f"{PREFIX}LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, "
                                f"got {self.log_level!r}")
        if self.log_format not in LOG_FORMATS:
            raise SettingsError(f"{PREFIX}LOG_FORMAT must be json or text (or empty: text on "
                                f"a terminal, json otherwise), got {self.log_format!r}")
        if self.token_default_scope not in TOKEN_SCOPES:
            raise SettingsError(f"{PREFIX}TOKEN_DEFAULT_SCOPE must be one of "
                                f"{', '.join(TOKEN_SCOPES)}, got {self.token_default_scope!r}")
        if self.token_default_expires_in:
            try:
                parse_duration(self.token_default_expires_in)
            except ValueError as exc:
                raise SettingsError(f"{PREFIX}TOKEN_DEFAULT_EXPIRES_IN: {exc}") from None
        if self.page_size > self.max_page_size:
            raise SettingsError(f"{PREFIX}PAGE_SIZE must not exceed {PREFIX}MAX_PAGE_SIZE")
        if self.database_pool_size <= 0:
            raise SettingsError(f"{PREFIX}DATABASE_POOL_SIZE must be positive")
        if self.secret_key and len(self.secret_key) < MIN_SECRET_LENGTH:
            raise SettingsError(
                f"BULLETIN_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters"
            )
        if self.production and not self.secret_key:
            raise SettingsError("BULLETIN_SECRET_KEY is required when BULLETIN_PRODUCTION=1")
        if self.production and not (self.public_url or self.allowed_hosts):
            raise SettingsError(
                "BULLETIN_PUBLIC_URL (or BULLETIN_ALLOWED_HOSTS) is required when "
                "BULLETIN_PRODUCTION=1: otherwise a request's Host header sets the links "
                "in pages that caches share")
        return self

    def _validate_metrics(self) -> None:
        for entry in self.metrics_allow:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise SettingsError(
                    f"{PREFIX}METRICS_ALLOW: expected addresses or networks such as "
                    f"10.0.0.0/8, got {entry!r}") from None
        if not 0 <= self.metrics_port <= 65535:
            raise SettingsError(f"{PREFIX}METRICS_PORT must be a port number (0: the main "
                                f"port), got {self.metrics_port}")
        if self.metrics_streams < 0:
            raise SettingsError(f"{PREFIX}METRICS_STREAMS must not be negative")

    def _validate_oembed(self) -> None:
        for name in ("oembed_timeout_seconds", "oembed_wait_seconds", "oembed_max_bytes"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{PREFIX}{name.upper()} must be positive")
        targets = [("oembed_proxy_url", self.oembed_proxy_url)] + [
            ("oembed_endpoints", entry.partition("=")[2]) for entry in self.oembed_endpoints]
        for entry in self.oembed_endpoints:
            if not re.fullmatch(r"[a-z]+=\S+", entry):
                raise SettingsError(
                    f"BULLETIN_OEMBED_ENDPOINTS: expected provider=url entries, got {entry!r}")
        for name, value in targets:
            parts = urlsplit(value)
            if value and (parts.scheme not in ("http", "https") or not parts.netloc
                          or parts.query or parts.fragment):
                raise SettingsError(
                    f"{PREFIX}{name.upper()} must be an http:// or https:// address without "
                    f"query or fragment, got {value!r}")

    def _validate_media(self) -> None:
        if self.media_url.startswith("s3://"):
            try:
                parse_s3_url(self.media_url)
            except ValueError as exc:
                raise SettingsError(f"BULLETIN_MEDIA_URL: {exc}") from None
        elif self.media_url and not self.media_url.startswith("file://"):
            raise SettingsError(
                f"BULLETIN_MEDIA_URL: unsupported media storage {self.media_url!r}; "
                "use file:///path or s3://bucket/prefix")
        for name in ("media_s3_endpoint_url", "media_public_url"):
            value = getattr(self, name)
            parts = urlsplit(value)
            if value and (parts.scheme not in ("http", "https") or not parts.netloc
                          or parts.query or parts.fragment):
                raise SettingsError(
                    f"{PREFIX}{name.upper()} must be an http:// or https:// address without "
                    f"query or fragment, got {value!r}")
        if not _REGION_RE.match(self.media_s3_region):
            raise SettingsError(
                f"BULLETIN_MEDIA_S3_REGION must be a region name such as eu-west-1 (auto for "
                f"R2), got {self.media_s3_region!r}")
        if bool(self.media_s3_access_key_id) != bool(self.media_s3_secret_access_key):
            raise SettingsError(
                "BULLETIN_MEDIA_S3_ACCESS_KEY_ID and BULLETIN_MEDIA_S3_SECRET_ACCESS_KEY go "
                "together: set both, or neither to use the AWS_* variables or the machine's "
                "role")

    def with_secret(self) -> Settings:
        """Return settings with a secret key, generating a development one in a file if unset."""
        if self.secret_key:
            return self
        path = Path(self.secret_key_file)
        if path.exists():
            key = path.read_text().strip()
            if len(key) >= MIN_SECRET_LENGTH:
                return replace(self, secret_key=key)
        key = secrets.token_urlsafe(48)
        path.write_text(key + "\n")
        path.chmod(0o600)
        log.warning(
            "BULLETIN_SECRET_KEY is not set: generated a development key in %s. "
            "Set BULLETIN_SECRET_KEY in production.", path.resolve()
        )
        return replace(self, secret_key=key)

    @property
    def media_location(self) -> str:
        """The media storage URL: BULLETIN_MEDIA_URL, or a folder beside the SQLite file."""
        if self.media_url:
            return self.media_url
        if self.database_url.startswith("sqlite") and ":///" in self.database_url:
            database = Path(self.database_url.split(":///", 1)[1].split("?", 1)[0])
            if database.name and database.name != ":memory:":
                return (database.parent / "media").resolve().as_uri()
        return (Path.cwd() / "media").resolve().as_uri()

    @property
    def shared_broker(self) -> bool:
        """Whether the broker reaches other processes (Redis), not only this one."""
        return not self.broker_url.startswith("memory://")

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is SQLite (the embedded default)."""
        return self.database_url.startswith("sqlite")


# Bucket names as S3 allows them today (and as a virtual host name can carry them); the
# prefix is kept to characters that need no escaping in a URL.
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*$")
_REGION_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def parse_s3_url(url: str) -> tuple[str, str]:
    """The bucket and key prefix (maybe empty) of ``s3://bucket/prefix``; ValueError saying
    what is wrong otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise ValueError(f"expected s3://bucket/prefix, got {url!r}")
    if "@" in parts.netloc or ":" in parts.netloc or parts.query or parts.fragment:
        raise ValueError(
            f"{url!r}: s3://bucket/prefix takes no keys, port, query or fragment (the "
            "endpoint and keys are BULLETIN_MEDIA_S3_* settings)")
    if not _BUCKET_RE.match(parts.netloc) or ".." in parts.netloc:
        raise ValueError(
            f"{url!r}: {parts.netloc!r} is not a bucket name (3 to 63 lowercase letters, "
            "digits, dots and hyphens)")
    prefix = parts.path.strip("/")
    if prefix and (not _PREFIX_RE.match(prefix)
                   or any(part in (".", "..") for part in prefix.split("/"))):
        raise ValueError(
            f"{url!r}: the prefix {prefix!r} may hold letters, digits, '.', '_', '-' and "
            "single '/' between them")
    return parts.netloc, prefix


def _parse(name: str, annotation: Any, raw: str) -> Any:
    kind = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    try:
        if kind == "bool":
            lowered = raw.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind.startswith("tuple"):
            return tuple(part.strip().rstrip("/") for part in raw.split(",") if part.strip())
    except ValueError:
        raise SettingsError(f"{name}: expected {kind}, got {raw!r}") from None
    return raw
