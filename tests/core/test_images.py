"""Photo processing: only real pictures pass, oriented, resized, in sRGB, with no metadata left."""

from __future__ import annotations

import io
import random
import struct
import zlib
from typing import Any

import pillow_heif
import pytest
from PIL import ExifTags, Image, ImageChops, ImageCms, ImageFile, ImageSequence

from bulletin.core import images
from bulletin.core.images import ImageRefused, ProcessedImage, Variant, process, sniff
from tests.conftest import service_unavailable

LIMIT = 50_000_000
SECRETS = (b"SN-0042-SECRET", b"Jane Secret", b"SpyCam", b"X-9000", b"secret-xmp", b"a note")
PIL_FORMATS = {"image/webp": "WEBP", "image/jpeg": "JPEG", "image/gif": "GIF"}


# -- building inputs


def encoded(img: Image.Image, fmt: str, **params: Any) -> bytes:
    """The image saved in memory as fmt."""
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def marked(size: tuple[int, int]) -> Image.Image:
    """A blue picture with a red square in its stored top-left corner."""
    img = Image.new("RGB", size, (0, 0, 200))
    img.paste((255, 0, 0), (0, 0, 80, 80))
    return img


def camera_exif(orientation: int) -> Image.Exif:
    """EXIF as a phone writes it: who, which camera, its serial number and where."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyCam"
    exif[ExifTags.Base.Model] = "X-9000"
    exif[ExifTags.Base.Artist] = "Jane Secret"
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.IFD.Exif] = {ExifTags.Base.BodySerialNumber: "SN-0042-SECRET"}
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (51.0, 30.0, 12.5),
        ExifTags.GPS.GPSLongitudeRef: "W",
        ExifTags.GPS.GPSLongitude: (0.0, 7.0, 39.0),
    }
    return exif


XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>secret-xmp</rdf:RDF></x:xmpmeta>'


def srgb_icc() -> bytes:
    """LittleCMS's sRGB profile."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def matrix_icc(red: tuple[float, ...], green: tuple[float, ...], blue: tuple[float, ...]) -> bytes:
    """A minimal ICC v2 RGB display profile with these D50 primaries and a 2.2 gamma."""

    def xyz(value: tuple[float, ...]) -> bytes:
        return b"XYZ \0\0\0\0" + b"".join(struct.pack(">i", round(c * 65536)) for c in value)

    d50 = (0.9642, 1.0, 0.8249)
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(2.2 * 256)) + b"\0\0"
    tags = [(b"wtpt", xyz(d50)), (b"rXYZ", xyz(red)), (b"gXYZ", xyz(green)),
            (b"bXYZ", xyz(blue)), (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    table, body = b"", b""
    start = 128 + 4 + 12 * len(tags)
    for signature, data in tags:
        table += signature + struct.pack(">II", start + len(body), len(data))
        body += data
    size = start + len(body)
    header = (struct.pack(">I4sI4s4s4s", size, b"lcms", 0x02100000, b"mntr", b"RGB ", b"XYZ ")
              + b"\0" * 12 + b"acsp" + b"\0" * 28 + xyz(d50)[8:] + b"\0" * 48)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


SRGB_RED, SRGB_GREEN, SRGB_BLUE = (0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (
    0.1431, 0.0606, 0.7141)


def png_bomb(width: int, height: int) -> bytes:
    """A real 1-bit PNG of width x height black pixels: a few kB that inflate to
    width x height / 8 bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    deflate = zlib.compressobj(9)
    rows = (b"\0" * (1 + (width + 7) // 8)) * 100  # each row: filter byte, then pixels
    idat = b"".join(deflate.compress(rows) for _ in range(height // 100))
    idat += deflate.compress(rows[: (height % 100) * len(rows) // 100]) + deflate.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


# -- inspecting outputs


def opened(variant: Variant) -> Image.Image:
    """The variant decoded by the decoder of its declared type only."""
    img = Image.open(io.BytesIO(variant.data), formats=[PIL_FORMATS[variant.content_type]])
    img.load()
    assert img.size == (variant.width, variant.height)
    return img


def jpeg_markers(data: bytes) -> list[int]:
    """The markers of a JPEG's segments before its scan."""
    markers, pos = [], 2
    while data[pos + 1] != 0xDA:
        assert data[pos] == 0xFF
        markers.append(data[pos + 1])
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return markers


def webp_chunks(data: bytes) -> set[bytes]:
    """The FourCCs of a WebP's chunks."""
    chunks, pos = set(), 12
    while pos < len(data):
        chunks.add(data[pos : pos + 4])
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        pos += 8 + size + size % 2  # chunks are padded to an even length
    return chunks


def assert_clean(result: ProcessedImage) -> None:
    """No variant carries EXIF, XMP, an ICC profile, a comment or any of the secrets."""
    for variant in result.variants:
        img = opened(variant)
        assert len(img.getexif()) == 0
        assert not {"exif", "icc_profile", "xmp", "XML:com.adobe.xmp", "comment"} & set(img.info)
        for secret in SECRETS:
            assert secret not in variant.data
        if variant.content_type == "image/jpeg":
            assert b"Exif\x00\x00" not in variant.data
            assert b"ICC_PROFILE" not in variant.data
            # Only JFIF's APP0 among the application segments, and no comment segment.
            assert not {m for m in jpeg_markers(variant.data) if 0xE1 <= m <= 0xEF or m == 0xFE}
        elif variant.content_type == "image/webp":
            assert webp_chunks(variant.data) <= {b"VP8 ", b"VP8L", b"VP8X", b"ALPH"}


def red_box(img: Image.Image) -> tuple[int, int, int, int] | None:
    """Where the red square is."""
    rgb = img.convert("RGB")
    red = ImageChops.subtract(rgb.getchannel("R"), rgb.getchannel("B"))
    return red.point(lambda v: 255 if v > 128 else 0).getbbox()


def refused(data: bytes, max_pixels: int = LIMIT) -> ImageRefused:
    """The refusal process raises for data."""
    with pytest.raises(ImageRefused) as info:
        process(data, max_pixels=max_pixels)
    return info.value


def forbid_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on, any attempt to decode pixels fails the test."""

    def load(self: Image.Image) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    monkeypatch.setattr(Image.Image, "load", load)


# -- orientation and metadata


def test_jpeg_is_rotated_by_its_exif_and_keeps_no_metadata() -> None:
    """A camera JPEG (Orientation 6, GPS, serial, owner, XMP, ICC, comment) comes out upright
    and with none of it."""
    data = encoded(marked((1200, 800)), "JPEG", exif=camera_exif(6), xmp=XMP,
                   icc_profile=srgb_icc(), comment=b"a note")
    source = Image.open(io.BytesIO(data))
    assert source.getexif().get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitudeRef] == "N"
    assert all(secret in data for secret in SECRETS)

    result = process(data, max_pixels=LIMIT)

    assert (result.width, result.height, result.source_type) == (800, 1200, "image/jpeg")
    assert [(v.width, v.height, v.content_type) for v in result.variants] == [
        (480, 720, "image/webp"), (480, 720, "image/jpeg"),
        (800, 1200, "image/webp"), (800, 1200, "image/jpeg"),
    ]
    for variant in result.variants:
        # Rotating 90° clockwise takes the stored top-left corner to the top right.
        box = red_box(opened(variant))
        scale = variant.width / 800
        assert box is not None
        assert abs(box[0] - (800 - 80) * scale) <= 3 and box[1] <= 2
        assert box[2] >= variant.width - 2 and abs(box[3] - 80 * scale) <= 3
    assert_clean(result)


def test_every_exif_orientation_is_undone() -> None:
    """Each of the eight EXIF orientations puts the stored top-left corner where it belongs."""
    corners = {1: "tl", 2: "tr", 3: "br", 4: "bl", 5: "tl", 6: "tr", 7: "br", 8: "bl"}
    for orientation, corner in corners.items():
        exif = Image.Exif()
        exif[ExifTags.Base.Orientation] = orientation
        result = process(encoded(marked((300, 200)), "PNG", exif=exif), max_pixels=LIMIT)
        img = opened(result.variants[-1])
        assert img.size == ((200, 300) if orientation >= 5 else (300, 200))
        box = red_box(img)
        assert box is not None
        at = ("t" if box[1] <= 2 else "b") + ("l" if box[0] <= 2 else "r")
        assert at == corner, orientation


def test_webp_and_png_metadata_is_stripped() -> None:
    """EXIF, XMP and ICC chunks of a WebP, and EXIF and text chunks of a PNG, are dropped."""
    webp = encoded(marked((640, 480)), "WEBP", exif=camera_exif(1), xmp=XMP,
                   icc_profile=srgb_icc())
    assert_clean(process(webp, max_pixels=LIMIT))
    from PIL import PngImagePlugin

    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", "a note")
    text.add_itxt("XML:com.adobe.xmp", XMP.decode(), zip=True)
    png = encoded(marked((640, 480)), "PNG", exif=camera_exif(1), pnginfo=text,
                  icc_profile=srgb_icc())
    result = process(png, max_pixels=LIMIT)
    assert result.source_type == "image/png"
    assert_clean(result)


# -- sizes


def test_variants_cover_every_width_up_to_the_capped_original() -> None:
    """A 4000x3000 picture gives 480, 960, 1600 and 2400 (the cap) wide, each in WebP then
    JPEG, heights in proportion."""
    result = process(encoded(Image.new("RGB", (4000, 3000), (90, 120, 30)), "JPEG"),
                     max_pixels=LIMIT)
    assert (result.width, result.height) == (2400, 1800)
    assert [(v.width, v.content_type) for v in result.variants] == [
        (w, t) for w in (480, 960, 1600, 2400) for t in ("image/webp", "image/jpeg")
    ]
    for variant in result.variants:
        assert abs(variant.height - variant.width * 3 / 4) <= 1
        assert opened(variant).format == PIL_FORMATS[variant.content_type]


def test_a_tall_picture_is_capped_on_its_longer_edge() -> None:
    """A 1000x3000 picture is capped to 800x2400, and only narrower widths are added."""
    result = process(encoded(Image.new("RGB", (1000, 3000)), "PNG"), max_pixels=LIMIT)
    assert (result.width, result.height) == (800, 2400)
    assert sorted({(v.width, v.height) for v in result.variants}) == [(480, 1440), (800, 2400)]


def test_a_small_picture_is_never_enlarged() -> None:
    """A picture narrower than every width gives only its own size."""
    result = process(encoded(Image.new("RGB", (300, 200)), "PNG"), max_pixels=LIMIT)
    assert [(v.width, v.height) for v in result.variants] == [(300, 200), (300, 200)]


# -- modes and colours


def test_alpha_is_kept_in_webp_and_flattened_onto_white_in_jpeg() -> None:
    """A PNG with transparency stays transparent in WebP; its JPEG shows white there."""
    img = Image.new("RGBA", (600, 400), (0, 0, 0, 0))
    img.paste((255, 0, 0, 255), (300, 0, 600, 400))
    result = process(encoded(img, "PNG"), max_pixels=LIMIT)
    webp, jpeg = (opened(v) for v in result.variants[-2:])
    assert webp.mode == "RGBA"
    assert webp.getpixel((10, 10))[3] == 0
    assert webp.getpixel((590, 10))[3] == 255
    assert jpeg.mode == "RGB"
    assert min(jpeg.getpixel((10, 10))) >= 250
    assert jpeg.getpixel((590, 10))[0] >= 240


def test_palette_transparency_is_alpha_and_unused_alpha_is_dropped() -> None:
    """A palette PNG's transparent index becomes alpha; an all-opaque RGBA PNG gives no
    alpha."""
    palette = Image.new("P", (200, 100), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0])
    palette.paste(1, (100, 0, 200, 100))
    result = process(encoded(palette, "PNG", transparency=0), max_pixels=LIMIT)
    webp = opened(result.variants[0])
    assert webp.mode == "RGBA" and webp.getpixel((10, 10))[3] == 0
    opaque = process(encoded(Image.new("RGBA", (200, 100), (1, 2, 3, 255)), "PNG"),
                     max_pixels=LIMIT)
    assert opened(opaque.variants[0]).mode == "RGB"


def test_cmyk_and_16_bit_grey_come_out_as_rgb_with_their_tones() -> None:
    """A CMYK JPEG becomes RGB; a 16-bit grey PNG is scaled to 8 bits, not clipped to
    white."""
    cmyk = process(encoded(Image.new("CMYK", (64, 64), (0, 255, 255, 0)), "JPEG"),
                   max_pixels=LIMIT)
    red = opened(cmyk.variants[-1])
    assert red.mode == "RGB"
    r, g, b = red.getpixel((32, 32))
    assert r > 200 and g < 60 and b < 60
    grey = process(encoded(Image.new("I;16", (64, 64), 40000), "PNG"), max_pixels=LIMIT)
    value = opened(grey.variants[-1]).convert("L").getpixel((32, 32))
    assert abs(value - 40000 / 256) <= 3


def test_an_icc_profile_is_converted_to_srgb_then_dropped() -> None:
    """Colours tagged with a profile whose red is sRGB's green are shown green, untagged."""
    swapped = matrix_icc(SRGB_GREEN, SRGB_RED, SRGB_BLUE)
    data = encoded(Image.new("RGB", (64, 64), (255, 0, 0)), "PNG", icc_profile=swapped)
    result = process(data, max_pixels=LIMIT)
    for variant in result.variants:
        r, g, b = opened(variant).convert("RGB").getpixel((32, 32))
        assert g > 220 and r < 40 and b < 40, variant.content_type
    assert_clean(result)


def test_an_unreadable_icc_profile_is_dropped_and_the_pixels_kept() -> None:
    """Garbage in place of an ICC profile does not refuse the picture."""
    data = encoded(Image.new("RGB", (64, 64), (255, 0, 0)), "JPEG", icc_profile=b"\0" * 200)
    result = process(data, max_pixels=LIMIT)
    assert opened(result.variants[-1]).getpixel((32, 32))[0] > 220
    assert_clean(result)


# -- HEIC


def heic(img: Image.Image, exif: Image.Exif | None = None) -> bytes:
    """The picture encoded as HEIC by libheif, or a skip when it cannot encode."""
    if not pillow_heif.libheif_info().get("HEIF"):
        service_unavailable("the installed libheif has no HEVC encoder")
    heif = pillow_heif.from_bytes(mode="RGB", size=img.size, data=img.tobytes())
    if exif is not None:
        heif.info["exif"] = exif.tobytes()
    buf = io.BytesIO()
    heif.save(buf, quality=90)
    return buf.getvalue()


def test_heic_is_decoded_rotated_once_and_stripped() -> None:
    """A HEIC with Orientation 6 and GPS comes out upright (rotated once, not twice) and with
    no metadata."""
    data = heic(marked((640, 480)), camera_exif(6))
    assert b"SN-0042-SECRET" in data
    result = process(data, max_pixels=LIMIT)
    assert (result.width, result.height, result.source_type) == (480, 640, "image/heic")
    box = red_box(opened(result.variants[-1]))
    assert box is not None and box[1] == 0 and box[2] == 480
    assert_clean(result)


def test_a_generic_heif_brand_is_reported_as_heif() -> None:
    """A HEIC whose major brand is mif1 is read, and reported as image/heif."""
    data = heic(Image.new("RGB", (64, 48), (10, 200, 10)))
    generic = data[:8] + b"mif1" + data[12:]
    assert process(generic, max_pixels=LIMIT).source_type == "image/heif"


def test_a_truncated_heic_is_corrupt() -> None:
    """The first half of a HEIC is refused as corrupt."""
    data = heic(marked((640, 480)))
    assert refused(data[: len(data) // 2]).code == "corrupt_image"


# -- GIF


def animation(comment: bytes = b"a note") -> bytes:
    """A three-frame looping GIF with a comment, an XMP block and junk after its trailer."""
    frames = []
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        frame = Image.new("RGB", (120, 80), colour)
        frame.paste((255, 255, 255), (i * 30, 10, i * 30 + 20, 30))
        frames.append(frame)
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:],
                   duration=[100, 200, 300], loop=0, comment=comment)
    xmp = b"\x21\xff\x0bXMP DataXMP" + bytes([len(XMP)]) + XMP + b"\x00"
    at = data.index(b"\x21\xff\x0bNETSCAPE2.0")
    return data[:at] + xmp + data[at:] + b"<script>alert(1)</script>"


def test_a_small_animation_is_kept_without_its_metadata() -> None:
    """A small animated GIF keeps its frames, timings and loop as one extra GIF variant, minus
    comment, XMP and trailing junk; its stills show the first frame."""
    data = animation()
    assert b"secret-xmp" in data and b"a note" in data
    result = process(data, max_pixels=LIMIT)
    assert [(v.width, v.content_type) for v in result.variants] == [
        (120, "image/webp"), (120, "image/jpeg"), (120, "image/gif")]
    gif = result.variants[-1]
    assert gif.data.endswith(b";") and b"script" not in gif.data
    assert_clean(result)

    kept, source = opened(gif), Image.open(io.BytesIO(data))
    assert kept.n_frames == 3 and kept.info.get("loop") == 0
    pairs = zip(ImageSequence.Iterator(kept), ImageSequence.Iterator(source), strict=True)
    for ours, theirs in pairs:
        assert "comment" not in ours.info
        assert ours.info["duration"] == theirs.info["duration"]
        assert ImageChops.difference(ours.convert("RGB"), theirs.convert("RGB")).getbbox() is None
    still = opened(result.variants[1]).getpixel((100, 70))
    assert still[0] > 240 and still[1] < 20


def test_an_animation_over_budget_gives_only_its_first_frame(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past the frame budget an animated GIF is reduced to stills of its first frame."""
    monkeypatch.setattr(images, "ANIMATION_MAX_FRAMES", 2)
    result = process(animation(), max_pixels=LIMIT)
    assert [v.content_type for v in result.variants] == ["image/webp", "image/jpeg"]
    assert opened(result.variants[1]).getpixel((100, 70))[0] > 240
    assert_clean(result)


def test_an_animation_wider_than_the_cap_gives_only_resized_stills() -> None:
    """An animated GIF wider than MAX_EDGE is not kept; its first frame is capped."""
    frames = [Image.new("RGB", (3000, 20), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    result = process(data, max_pixels=LIMIT)
    assert (result.width, result.height) == (2400, 16)
    assert "image/gif" not in {v.content_type for v in result.variants}


def test_a_still_gif_gives_stills_without_its_comment() -> None:
    """A one-frame GIF gives WebP and JPEG only, with its comment gone."""
    data = encoded(marked((200, 100)), "GIF", comment=b"a note")
    result = process(data, max_pixels=LIMIT)
    assert result.source_type == "image/gif"
    assert [v.content_type for v in result.variants] == ["image/webp", "image/jpeg"]
    assert_clean(result)


# -- refusals


@pytest.mark.parametrize(
    "data",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>',
        b"<!doctype html><html><body><script>alert(1)</script></body></html>",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
        b"#!/bin/sh\nrm -rf /\n",
        random.Random(7).randbytes(4096),
        b"",
    ],
    ids=["svg", "xml-svg", "html", "pdf", "script", "random", "empty"],
)
def test_anything_but_an_accepted_signature_is_unsupported(data: bytes) -> None:
    """Bytes without an accepted image signature are refused with 415 before decoding."""
    refusal = refused(data)
    assert (refusal.status, refusal.code) == (415, "unsupported_image")


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n" + random.Random(1).randbytes(2000),
        b"\xff\xd8\xff\xe0" + random.Random(2).randbytes(2000),
        b"GIF89a" + random.Random(3).randbytes(2000),
        b"RIFF\x00\x10\x00\x00WEBPVP8 " + random.Random(4).randbytes(2000),
    ],
    ids=["png", "jpeg", "gif", "webp"],
)
def test_a_signature_followed_by_garbage_is_corrupt(data: bytes) -> None:
    """A valid signature that the decoder of that type cannot read is refused with 422."""
    refusal = refused(data)
    assert (refusal.status, refusal.code) == (422, "corrupt_image")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_truncated_picture_is_corrupt(fmt: str) -> None:
    """The first half of a picture is refused as corrupt, never decoded leniently."""
    noise = Image.effect_noise((400, 300), 60).convert("RGB")
    data = encoded(noise, fmt)
    refusal = refused(data[: len(data) // 2])
    assert (refusal.status, refusal.code) == (422, "corrupt_image")


def test_a_decompression_bomb_is_refused_from_its_header(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ~100 kB PNG of 30000x30000 pixels is refused with 413 without decoding a pixel."""
    data = png_bomb(30000, 30000)
    assert len(data) < 200_000
    forbid_decoding(monkeypatch)
    refusal = refused(data)
    assert (refusal.status, refusal.code) == (413, "too_many_pixels")


def test_a_jpeg_claiming_huge_dimensions_is_refused_from_its_header(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A tiny JPEG whose frame header claims 30000x30000 is refused with 413 undecoded."""
    data = bytearray(encoded(Image.new("RGB", (16, 16)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 30000, 30000)
    forbid_decoding(monkeypatch)
    assert refused(bytes(data)).status == 413


def test_the_limit_is_the_callers_and_never_above_pillows(monkeypatch: pytest.MonkeyPatch) -> None:
    """A picture over max_pixels is refused; a max_pixels above Pillow's ceiling is clamped to
    it, so Pillow's bomb warning is never reached (warnings are errors here)."""
    small = png_bomb(1000, 1000)
    assert refused(small, max_pixels=999_999).status == 413
    ceiling = Image.MAX_IMAGE_PIXELS
    assert ceiling is not None and ceiling < 10000 * 10000 < 2 * ceiling
    over_ceiling = png_bomb(10000, 10000)  # where Image.open would warn
    forbid_decoding(monkeypatch)
    assert refused(over_ceiling, max_pixels=10**12).status == 413
    with pytest.raises(ValueError, match="positive"):
        process(small, max_pixels=0)


def test_a_gif_frame_far_past_its_canvas_is_too_many_pixels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A GIF whose first frame claims 30000x30000 on a small canvas is refused with 413."""
    data = bytearray(encoded(Image.new("P", (10, 10)), "GIF"))
    descriptor = data.index(b"\x2c\x00\x00\x00\x00")
    data[descriptor + 5 : descriptor + 9] = struct.pack("<HH", 30000, 30000)
    forbid_decoding(monkeypatch)
    assert refused(bytes(data)).status == 413


# -- sniffing


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    """The start of an ISO BMFF file: its ftyp box."""
    brands = major + b"\0\0\0\0" + b"".join(compatible)
    return struct.pack(">I", 8 + len(brands)) + b"ftyp" + brands + b"\0\0\0\x08meta"


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"\xff\xd8\xff\xe1\x00\x10Exif", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
        (b"GIF87a\x01\x00\x01\x00", "image/gif"),
        (b"GIF89a\x01\x00\x01\x00", "image/gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
        *[(ftyp(b, b"mif1"), "image/heic") for b in (b"heic", b"heix", b"hevc", b"hevx",
                                                     b"heim", b"heis")],
        (ftyp(b"mif1", b"heic"), "image/heif"),
        (ftyp(b"msf1", b"hevc"), "image/heif"),
    ],
)
def test_sniff_names_each_accepted_signature(data: bytes, kind: str) -> None:
    """Each accepted signature is recognised from the bytes alone."""
    assert sniff(data) == kind


@pytest.mark.parametrize(
    "data",
    [
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"<html>",
        b"%PDF-1.4",
        b"BM\x36\x00\x00\x00",  # BMP
        b"II*\x00",  # TIFF
        b"RIFF\x24\x00\x00\x00WAVEfmt ",
        b"\xff\xd8",  # too short to be a JPEG
        ftyp(b"avif", b"mif1"),
        ftyp(b"mif1", b"avif", b"miaf"),  # AVIF under a generic brand
        ftyp(b"isom", b"mp41"),  # MP4 video
        b"",
    ],
)
def test_sniff_names_nothing_else(data: bytes) -> None:
    """Other formats, AVIF and video included, have no accepted type."""
    assert sniff(data) is None
