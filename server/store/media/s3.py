"""Media files in an S3-compatible bucket (``s3://bucket/prefix``): AWS S3, MinIO,
Cloudflare R2 and the like, so that several machines share photos without a shared folder.

Readers fetch the files from the bucket, or from a CDN in front of it: ``url(name)`` is
absolute (BULLETIN_MEDIA_PUBLIC_URL, else the bucket's own address), so posts made while
this store is in use never send readers to Bulletin for a photo. ``GET /media/{name}``
still answers, by reading the object through ``get`` and passing it on. That costs no
code of its own, and it keeps the ``/media/`` links of posts written while the photos
were in a folder working once the files are copied into the bucket. It is a fallback,
not the way photos are meant to reach readers.

Each object is written in one PUT, which S3 makes visible whole or not at all, with its
Content-Type and ``Cache-Control: public, max-age=31536000, immutable``, so that the
bucket serves it the way Bulletin would. Every request has a connect timeout, a request
timeout and two retries at most, so an S3 that hangs fails an upload in seconds with
MediaUnavailable instead of holding it open forever.

The client is obstore (Rust's ``object_store``): its async calls are native to asyncio
and it brings neither botocore nor aiohttp into the server.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from obstore.store import S3Store

from ...settings import Settings, parse_s3_url
from .base import CACHE_CONTROL, NAME_RE, MediaUnavailable

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig, S3Config

CONNECT_TIMEOUT_SECONDS = 5.0
# One request, from connecting to the last byte of the answer (the largest variant is a
# few megabytes).
REQUEST_TIMEOUT_SECONDS = 30.0
RETRIES = 2


class S3MediaStore:
    """A bucket (under a prefix) of media files."""

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str = "",
                 region: str = "us-east-1", access_key_id: str = "",
                 secret_access_key: str = "", public_url: str = "",
                 connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
                 request_timeout: float = REQUEST_TIMEOUT_SECONDS) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        endpoint = endpoint_url.rstrip("/")
        self.public_base = public_url.rstrip("/") or _bucket_address(
            endpoint, bucket, self.prefix, region)
        config: S3Config = {"region": region}
        if endpoint:
            config["endpoint"] = endpoint
        if access_key_id:
            config["access_key_id"] = access_key_id
            config["secret_access_key"] = secret_access_key
        client: ClientConfig = {
            "allow_http": endpoint.startswith("http://"),
            "connect_timeout": timedelta(seconds=connect_timeout),
            "timeout": timedelta(seconds=request_timeout),
        }
        retry: RetryConfig = {
            "max_retries": RETRIES,
            "retry_timeout": timedelta(seconds=request_timeout),
            "backoff": {"init_backoff": timedelta(milliseconds=100),
                        "max_backoff": timedelta(seconds=2)},
        }
        # Builds a client only: nothing is sent before the first call.
        self._store = S3Store(bucket, prefix=self.prefix or None, config=config,
                              client_options=client, retry_config=retry)

    @classmethod
    def from_url(cls, url: str, settings: Settings) -> S3MediaStore:
        """``s3://bucket/prefix``, with the endpoint, region, keys and public URL from the
        BULLETIN_MEDIA_* settings."""
        bucket, prefix = parse_s3_url(url)
        return cls(bucket, prefix, endpoint_url=settings.media_s3_endpoint_url,
                   region=settings.media_s3_region,
                   access_key_id=settings.media_s3_access_key_id,
                   secret_access_key=settings.media_s3_secret_access_key,
                   public_url=settings.media_public_url)

    async def put(self, name: str, data: bytes, content_type: str) -> None:
        """Write ``data`` under ``name`` in one PUT, with the headers it is served with."""
        _check(name)
        try:
            await self._store.put_async(name, data, attributes={
                "Content-Type": content_type, "Cache-Control": CACHE_CONTROL})
        except Exception as exc:
            raise _unavailable("write", name, exc) from exc

    async def get(self, name: str) -> bytes | None:
        """The object's bytes, or None."""
        if not NAME_RE.match(name):
            return None
        try:
            result = await self._store.get_async(name)
            data = await result.bytes_async()
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise _unavailable("read", name, exc) from exc
        return data.to_bytes()

    async def delete(self, name: str) -> None:
        """Remove the object if it is there (S3 answers a missing key as deleted)."""
        _check(name)
        try:
            await self._store.delete_async(name)
        except FileNotFoundError:
            return
        except Exception as exc:
            raise _unavailable("delete", name, exc) from exc

    def local_path(self, name: str) -> Path | None:
        """None: the files are in the bucket."""
        return None

    def url(self, name: str) -> str:
        """The absolute URL readers fetch the file from."""
        _check(name)
        return f"{self.public_base}/{name}"


def _check(name: str) -> None:
    if not NAME_RE.match(name):
        raise ValueError(f"not a media file name: {name!r}")


def _bucket_address(endpoint: str, bucket: str, prefix: str, region: str) -> str:
    """Where the bucket serves its objects: path-style under a set endpoint; on AWS the
    bucket's virtual host, or path-style when dots in the name would break TLS there."""
    if endpoint:
        base = f"{endpoint}/{bucket}"
    elif "." in bucket:
        base = f"https://s3.{region}.amazonaws.com/{bucket}"
    else:
        base = f"https://{bucket}.s3.{region}.amazonaws.com"
    return f"{base}/{prefix}" if prefix else base


def _unavailable(action: str, name: str, exc: Exception) -> MediaUnavailable:
    # obstore's messages go on with a debug dump of the request; the first line says it.
    first = next(iter(str(exc).splitlines()), "") or type(exc).__name__
    return MediaUnavailable(f"could not {action} {name} in the bucket: {first}")
