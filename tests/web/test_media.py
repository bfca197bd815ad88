"""Photo uploads through the API: real image files in, variants with no metadata out,
every refusal leaving storage and database as they were."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlmodel import func, select

from bulletin.settings import Settings
from bulletin.store.db import Database
from bulletin.store.models import Media

SERIAL = "SN-4417-REPORTER"


def field_photo(width: int = 1200, height: int = 800) -> bytes:
    """A JPEG as a phone takes it: GPS position, camera serial, owner, and an orientation
    tag saying it must be turned 90° clockwise. Its top-left corner is red."""
    image = Image.new("RGB", (width, height), (20, 90, 200))
    image.paste((230, 10, 10), (0, 0, 100, 100))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    exif[0x010F] = "PhoneMaker"
    exif[0x013B] = "Jane Reporter"  # Artist
    exif.get_ifd(0x8769)[0xA431] = SERIAL  # BodySerialNumber
    exif.get_ifd(0x8825).update({1: "N", 2: (10.0, 30.0, 0.0), 3: "W", 4: (66.0, 54.0, 0.0)})
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif, quality=90)
    return out.getvalue()


def media_dir(settings: Settings) -> Path:
    return Path(settings.media_url.removeprefix("file://"))


async def stored(db: Database, settings: Settings) -> tuple[int, list[str]]:
    """How many media rows there are, and which files."""
    async with db.read() as session:
        rows = (await session.exec(select(func.count()).select_from(Media))).one()
    folder = media_dir(settings)
    files = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    return rows, files


async def upload(client: httpx.AsyncClient, data: bytes, name: str = "photo.jpg",
                 content_type: str = "image/jpeg", **fields: str) -> httpx.Response:
    return await client.post("/api/media", files={"file": (name, data, content_type)},
                             data=fields)


async def test_a_field_photo_comes_back_turned_resized_and_without_metadata(
        editor_client: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    """A phone's JPEG is turned as its orientation tag says, made into several widths in
    WebP and JPEG, and no served variant carries its GPS position, serial or owner."""
    r = await upload(editor_client, field_photo(), alt="Crowd at the square",
                     caption="The march", credit="Jane Reporter")
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    assert (body["width"], body["height"]) == (800, 1200)
    assert body["alt"] == "Crowd at the square" and body["source_type"] == "image/jpeg"
    widths = sorted({v["width"] for v in body["variants"]})
    assert widths == [480, 800]
    assert {v["content_type"] for v in body["variants"]} == {"image/webp", "image/jpeg"}
    for variant in body["variants"]:
        served = await client.get(variant["url"])
        assert served.status_code == 200
        assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert served.headers["x-content-type-options"] == "nosniff"
        assert served.headers["content-type"] == variant["content_type"]
        assert SERIAL.encode() not in served.content and b"Jane" not in served.content
        assert b"Exif\x00\x00" not in served.content
        image = Image.open(io.BytesIO(served.content))
        assert image.size == (variant["width"], variant["height"])
        assert not image.getexif()
        assert not {"exif", "xmp", "icc_profile", "comment"} & set(image.info)
        # Turned 90° clockwise: the red top-left corner is now top-right.
        rgb = image.convert("RGB")
        red = rgb.getpixel((rgb.width - 5, 5))
        assert isinstance(red, tuple) and red[0] > 180 and red[2] < 80
    again = await editor_client.get(f"/api/media/{body['id']}")
    assert again.status_code == 200 and again.json() == body


async def test_uploads_are_for_editors_only(client: httpx.AsyncClient, db: Database,
                                            settings: Settings) -> None:
    """An anonymous upload is a 401 and stores nothing."""
    r = await upload(client, field_photo())
    assert r.status_code == 401
    assert await stored(db, settings) == (0, [])


@pytest.mark.parametrize(("data", "name", "status", "code"), [
    (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
     "photo.jpg", 415, "unsupported_image"),
    (b"<html><body>not a photo</body></html>", "photo.png", 415, "unsupported_image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 50, "photo.png", 422, "corrupt_image"),
])
async def test_what_is_not_a_photo_is_refused_and_leaves_nothing(
        editor_client: httpx.AsyncClient, db: Database, settings: Settings,
        data: bytes, name: str, status: int, code: str) -> None:
    """SVG (script-capable), HTML named as a photo and a broken PNG are refused with a
    clear JSON error; no row and no file is left."""
    r = await upload(editor_client, data, name=name)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert await stored(db, settings) == (0, [])


async def test_a_truncated_photo_is_refused(editor_client: httpx.AsyncClient, db: Database,
                                            settings: Settings) -> None:
    """Half a JPEG is a 422, with nothing stored."""
    data = field_photo()
    r = await upload(editor_client, data[: len(data) // 2])
    assert r.status_code == 422 and r.json()["error"]["code"] == "corrupt_image"
    assert await stored(db, settings) == (0, [])


async def test_a_decompression_bomb_is_refused_from_its_header(
        editor_client: httpx.AsyncClient, db: Database, settings: Settings) -> None:
    """A small file that would decode to more pixels than the limit is a 413."""
    out = io.BytesIO()
    Image.new("1", (10_000, 6_000)).save(out, format="PNG")  # 60 Mpx in a few KB
    assert len(out.getvalue()) < 100_000
    r = await upload(editor_client, out.getvalue(), name="bomb.png", content_type="image/png")
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_many_pixels"
    assert await stored(db, settings) == (0, [])


async def test_an_upload_over_the_size_limit_is_refused_while_it_streams(
        app: Any, editor_client: httpx.AsyncClient, db: Database, settings: Settings) -> None:
    """Past max_upload_bytes the upload is a 413, refused before the file is read whole,
    even without a Content-Length to go by."""
    app.state.services.settings = limited = replace(settings, max_upload_bytes=200_000)
    sent = 0

    async def chunks() -> Any:
        nonlocal sent
        boundary = b"--b\r\n"
        yield boundary + (b'Content-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
                          b"Content-Type: image/jpeg\r\n\r\n")
        for _ in range(200):
            sent += 16_384
            yield b"\xff" * 16_384
        yield b"\r\n--b--\r\n"

    r = await editor_client.post("/api/media", content=chunks(),
                                 headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "upload_too_large"
    assert r.json()["error"]["details"]["max_bytes"] == limited.max_upload_bytes
    assert sent < 600_000  # the rest of the 3.2 MB body was never read
    assert await stored(db, settings) == (0, [])


async def test_an_upload_must_be_multipart_with_a_file(
        editor_client: httpx.AsyncClient) -> None:
    """JSON is a 415; a form without the file field is a 422 naming it."""
    r = await editor_client.post("/api/media", json={"file": "x"})
    assert r.status_code == 415
    r = await editor_client.post("/api/media", data={"alt": "x"},
                                 files={"other": ("a.txt", b"x", "text/plain")})
    assert r.status_code == 422 and "file" in r.json()["error"]["message"]


async def test_unknown_media_and_files_are_404(editor_client: httpx.AsyncClient,
                                               client: httpx.AsyncClient) -> None:
    """A media id or file name that does not exist is a 404, and names outside the
    storage's pattern never reach the disk."""
    for media_id in (999, 2**31):  # the second past any 32-bit id
        r = await editor_client.get(f"/api/media/{media_id}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "media_not_found"
    assert (await client.get("/media/" + "a" * 32 + "-480.webp")).status_code == 404
    assert (await client.get("/media/..%2F..%2Fetc%2Fpasswd")).status_code == 404


async def test_a_stored_file_is_sent_from_disk_with_ranges_and_its_headers(
        editor_client: httpx.AsyncClient, client: httpx.AsyncClient,
        settings: Settings) -> None:
    """The folder's files are sent as files (a range is answered, not the whole photo),
    with the year-long cache and nosniff."""
    body = (await upload(editor_client, field_photo())).json()
    url = body["variants"][0]["url"]
    whole = (media_dir(settings) / url.rsplit("/", 1)[1]).read_bytes()
    full = await client.get(url)
    assert full.status_code == 200 and full.content == whole
    assert full.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert full.headers["x-content-type-options"] == "nosniff"
    assert full.headers["content-type"] == body["variants"][0]["content_type"]
    part = await client.get(url, headers={"Range": "bytes=10-99"})
    assert part.status_code == 206 and part.content == whole[10:100]
    head = await client.head(url)
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(whole)
