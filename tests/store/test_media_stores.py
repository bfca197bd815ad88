"""The media store contract, run against every backend: a folder, and an S3 bucket on
moto's standalone server. Then a photo uploaded through the app into the bucket, fetched
back from the bucket as a reader would."""

from __future__ import annotations

import io
import itertools
import json
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from bulletin.settings import Settings
from bulletin.store.media import FileMediaStore, MediaStore, MediaUnavailable, media_store_from_url
from bulletin.store.media.base import CACHE_CONTROL
from bulletin.store.media.s3 import S3MediaStore
from tests.conftest import TEST_SECRET, free_tcp_port, service_unavailable
from tests.web.test_media import field_photo, upload

NAME = "0123456789abcdef0123456789abcdef-480.webp"
OTHER = "fedcba9876543210fedcba9876543210-800.jpg"
KEYS = {"access_key_id": "testing", "secret_access_key": "testing"}
PREFIX = "photos"
# Moto keeps its buckets for the whole process: each test gets new ones.
_RUN = uuid.uuid4().hex[:8]
_buckets = itertools.count(1)


# --- moto -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """An S3 API of moto's own on a free port for the session; skips without moto (fails
    in CI)."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        service_unavailable(f"moto is not installed ({exc}): pip install -e '.[test]'")
        raise  # not reached: the test was skipped or failed
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def s3_client(moto_endpoint: str) -> Any:
    """A boto3 client of moto's S3 (moto brings boto3), to arrange and inspect buckets from
    outside the store."""
    import boto3

    return boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                        aws_access_key_id=KEYS["access_key_id"],
                        aws_secret_access_key=KEYS["secret_access_key"])


@pytest.fixture
def bucket(s3_client: Any) -> str:
    """A new, empty bucket whose objects anyone may read, as docs/deploy.md sets one up."""
    name = f"bulletin-{_RUN}-{next(_buckets)}"
    s3_client.create_bucket(Bucket=name)
    s3_client.put_bucket_policy(Bucket=name, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
                       "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{name}/*"}]}))
    return name


def closed_endpoint() -> str:
    """An http:// address where nothing listens."""
    return f"http://127.0.0.1:{free_tcp_port()}"


# --- the contract, for every backend ------------------------------------------------------

@dataclass
class Backend:
    """A store of one kind, one of the same kind that cannot be reached, and the URL the
    first should give for a name."""

    store: MediaStore
    unreachable: MediaStore
    url_for: Callable[[str], str]


@pytest.fixture(params=["file", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """A folder in tmp_path, then a bucket on moto (under a prefix)."""
    if request.param == "file":
        blocker = tmp_path / "a-file"
        blocker.write_text("")
        return Backend(FileMediaStore(tmp_path / "media"), FileMediaStore(blocker / "media"),
                       lambda name: f"/media/{name}")
    endpoint: str = request.getfixturevalue("moto_endpoint")
    name: str = request.getfixturevalue("bucket")
    # The unreachable one keeps the default timeouts: a refused connection must fail fast
    # as configured for production, not only with test settings.
    return Backend(S3MediaStore(name, PREFIX, endpoint_url=endpoint, **KEYS),
                   S3MediaStore(name, PREFIX, endpoint_url=closed_endpoint(), **KEYS),
                   lambda file: f"{endpoint}/{name}/{PREFIX}/{file}")


async def test_a_stored_file_reads_back_the_same(backend: Backend) -> None:
    """put then get returns the bytes put, for each name separately."""
    await backend.store.put(NAME, b"webp bytes", "image/webp")
    await backend.store.put(OTHER, b"jpeg bytes", "image/jpeg")
    assert await backend.store.get(NAME) == b"webp bytes"
    assert await backend.store.get(OTHER) == b"jpeg bytes"


async def test_put_overwrites_a_name(backend: Backend) -> None:
    """A second put under the same name replaces the bytes."""
    await backend.store.put(NAME, b"first", "image/webp")
    await backend.store.put(NAME, b"second", "image/webp")
    assert await backend.store.get(NAME) == b"second"


async def test_a_missing_name_reads_as_none(backend: Backend) -> None:
    """get of a name never stored is None, not an error."""
    assert await backend.store.get(NAME) is None


async def test_delete_removes_and_is_idempotent(backend: Backend) -> None:
    """delete removes a file; deleting it again, or a name never stored, is no error."""
    await backend.store.put(NAME, b"x", "image/webp")
    await backend.store.delete(NAME)
    assert await backend.store.get(NAME) is None
    await backend.store.delete(NAME)
    await backend.store.delete(OTHER)


@pytest.mark.parametrize("name", ["../../etc/passwd", "0123456789abcdef.png",
                                  "0123456789ABCDEF0123456789ABCDEF.jpg",
                                  "sub/0123456789abcdef0123456789abcdef.jpg", ""])
async def test_names_outside_the_pattern_are_refused(backend: Backend, name: str) -> None:
    """A name Bulletin would not have chosen is refused by put and delete (ValueError) and
    reads as missing: no name reaches outside the folder or prefix."""
    with pytest.raises(ValueError, match="not a media file name"):
        await backend.store.put(name, b"x", "image/jpeg")
    with pytest.raises(ValueError, match="not a media file name"):
        await backend.store.delete(name)
    assert await backend.store.get(name) is None


def test_url_is_where_readers_fetch_the_file(backend: Backend) -> None:
    """A folder's files are under /media/ on Bulletin; a bucket's at the bucket's absolute,
    path-style address under its endpoint and prefix."""
    assert backend.store.url(NAME) == backend.url_for(NAME)


async def test_an_unreachable_store_raises_media_unavailable_quickly(backend: Backend) -> None:
    """put, get and delete on storage that cannot be reached each raise MediaUnavailable,
    and fail in moments, not after a hang."""
    started = time.monotonic()
    with pytest.raises(MediaUnavailable):
        await backend.unreachable.put(NAME, b"x", "image/webp")
    with pytest.raises(MediaUnavailable):
        await backend.unreachable.get(NAME)
    with pytest.raises(MediaUnavailable):
        await backend.unreachable.delete(NAME)
    assert time.monotonic() - started < 10


# --- S3 only --------------------------------------------------------------------------------

async def test_objects_carry_the_headers_a_bucket_serves_them_with(
        moto_endpoint: str, bucket: str, s3_client: Any) -> None:
    """Each object is stored under the prefix with its Content-Type and a year's immutable
    Cache-Control, so the bucket (and a CDN) serve it as Bulletin would."""
    store = S3MediaStore(bucket, PREFIX, endpoint_url=moto_endpoint, **KEYS)
    await store.put(NAME, b"webp", "image/webp")
    await store.put(OTHER, b"jpeg", "image/jpeg")
    listed = s3_client.list_objects_v2(Bucket=bucket)
    keys = sorted(o["Key"] for o in listed["Contents"])
    assert keys == sorted([f"{PREFIX}/{NAME}", f"{PREFIX}/{OTHER}"])
    for name, kind in ((NAME, "image/webp"), (OTHER, "image/jpeg")):
        head = s3_client.head_object(Bucket=bucket, Key=f"{PREFIX}/{name}")
        assert head["ContentType"] == kind
        assert head["CacheControl"] == CACHE_CONTROL == "public, max-age=31536000, immutable"


async def test_a_hung_s3_fails_within_the_request_timeout() -> None:
    """An endpoint that accepts the connection and never answers fails each call with
    MediaUnavailable once the request timeout (and its few retries) run out."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        store = S3MediaStore("bulletin-hung", endpoint_url=f"http://127.0.0.1:{port}",
                             connect_timeout=0.5, request_timeout=0.5, **KEYS)
        for call in (store.put(NAME, b"x", "image/webp"), store.get(NAME), store.delete(NAME)):
            started = time.monotonic()
            with pytest.raises(MediaUnavailable):
                await call
            assert time.monotonic() - started < 5


@pytest.mark.parametrize(("env", "expected"), [
    ({"BULLETIN_MEDIA_URL": "s3://photos-bucket", "BULLETIN_MEDIA_S3_REGION": "eu-west-1"},
     f"https://photos-bucket.s3.eu-west-1.amazonaws.com/{NAME}"),
    ({"BULLETIN_MEDIA_URL": "s3://photos-bucket/live/2026/"},
     f"https://photos-bucket.s3.us-east-1.amazonaws.com/live/2026/{NAME}"),
    ({"BULLETIN_MEDIA_URL": "s3://media.example.com/p"},  # dots: no virtual host over TLS
     f"https://s3.us-east-1.amazonaws.com/media.example.com/p/{NAME}"),
    ({"BULLETIN_MEDIA_URL": "s3://bucket/p", "BULLETIN_MEDIA_S3_ENDPOINT_URL":
      "http://127.0.0.1:9000/"}, f"http://127.0.0.1:9000/bucket/p/{NAME}"),
    ({"BULLETIN_MEDIA_URL": "s3://bucket/p", "BULLETIN_MEDIA_S3_ENDPOINT_URL":
      "https://acct.r2.cloudflarestorage.com", "BULLETIN_MEDIA_S3_REGION": "auto",
      "BULLETIN_MEDIA_PUBLIC_URL": "https://cdn.example.com/photos/"},
     f"https://cdn.example.com/photos/{NAME}"),
    ({"BULLETIN_MEDIA_URL": "file:///srv/media",
      "BULLETIN_MEDIA_PUBLIC_URL": "https://cdn.example.com/media"},
     f"https://cdn.example.com/media/{NAME}"),
])
def test_public_urls_follow_the_settings(env: dict[str, str], expected: str) -> None:
    """The store BULLETIN_MEDIA_URL picks gives files' URLs under BULLETIN_MEDIA_PUBLIC_URL
    when set, else the bucket's own address: AWS's virtual host for the region, path-style
    under a set endpoint or for a dotted bucket name."""
    settings = Settings.from_env(env)
    store = media_store_from_url(settings.media_location, settings)
    assert store.url(NAME) == expected


def test_the_url_scheme_picks_the_backend(tmp_path: Path) -> None:
    """file:// is a folder, s3:// a bucket, and anything else is refused by name."""
    settings = Settings()
    assert isinstance(media_store_from_url(tmp_path.as_uri(), settings), FileMediaStore)
    s3 = media_store_from_url("s3://bucket/a/b", settings)
    assert isinstance(s3, S3MediaStore) and (s3.bucket, s3.prefix) == ("bucket", "a/b")
    with pytest.raises(ValueError, match="unsupported media storage"):
        media_store_from_url("gs://bucket", settings)


# --- through the app ------------------------------------------------------------------------

@pytest.fixture
def settings(database_url: str, tmp_path: Path, moto_endpoint: str, bucket: str) -> Settings:
    """The test app's settings (as tests/conftest.py's) with photos in the moto bucket,
    which readers reach at another name of the same server (as they would a CDN)."""
    port = moto_endpoint.rsplit(":", 1)[1]
    return Settings(
        database_url=database_url, secret_key=TEST_SECRET,
        secret_key_file=str(tmp_path / "secret"), write_rate=1000.0, write_burst=1000,
        media_url=f"s3://{bucket}/{PREFIX}", media_s3_endpoint_url=moto_endpoint,
        media_s3_access_key_id=KEYS["access_key_id"],
        media_s3_secret_access_key=KEYS["secret_access_key"],
        media_public_url=f"http://localhost:{port}/{bucket}/{PREFIX}/").validated()


async def test_an_uploaded_photo_is_served_from_the_bucket(
        editor_client: httpx.AsyncClient, client: httpx.AsyncClient,
        settings: Settings) -> None:
    """With BULLETIN_MEDIA_URL=s3://…, an upload's variant URLs are absolute under
    BULLETIN_MEDIA_PUBLIC_URL, and fetching them anonymously from the bucket gives the
    JPEG and WebP files with their type and a year's caching; /media/{name} on Bulletin
    still serves the same bytes, read from the bucket."""
    r = await upload(editor_client, field_photo(), alt="Crowd at the square")
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    assert body["url"].startswith(settings.media_public_url)
    formats = {"image/jpeg": "JPEG", "image/webp": "WEBP"}
    assert {v["content_type"] for v in body["variants"]} == set(formats)
    async with httpx.AsyncClient() as reader:
        for variant in body["variants"]:
            url: str = variant["url"]
            assert url.startswith(settings.media_public_url)
            served = await reader.get(url)
            assert served.status_code == 200, url
            assert served.headers["content-type"] == variant["content_type"]
            assert served.headers["cache-control"] == CACHE_CONTROL
            image = Image.open(io.BytesIO(served.content))
            assert image.format == formats[variant["content_type"]]
            assert image.size == (variant["width"], variant["height"])
            proxied = await client.get("/media/" + url.rsplit("/", 1)[1])
            assert proxied.status_code == 200 and proxied.content == served.content
