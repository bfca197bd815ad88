"""Photo uploads: untrusted bytes in, resized WebP and JPEG variants with no metadata out.

What `process` guarantees:

- The type comes from the bytes' signature (`sniff`), never from a name or a Content-Type, and
  only the decoder of that type ever parses them: SVG, HTML, PDF or a script is refused (415)
  before any decoder sees it, and bytes a decoder rejects are corrupt (422).
- A picture of more than `max_pixels` is refused (413) from its header, before any pixel is
  decoded. `max_pixels` is clamped to Pillow's `Image.MAX_IMAGE_PIXELS`, so Pillow's own bomb
  checks (which warn above that) are never reached by an accepted picture. The one check
  Pillow makes itself while reading a header is a GIF frame reaching past its canvas: beyond
  twice the ceiling it raises, between once and twice it warns (raised where warnings are
  errors, else printed); either way the picture is refused (413).
- A truncated or corrupt picture is refused (422); nothing is decoded leniently.
- The EXIF orientation is applied, and colours tagged with an ICC profile are converted to
  sRGB. Then every output is built from a fresh image: no EXIF (GPS, serial number, owner),
  no XMP, no ICC profile, no comment, no thumbnail reaches any variant.
- Variants: the picture capped at MAX_EDGE on its longer edge, and each of WIDTHS narrower
  than that, keeping the aspect ratio; each width once as WebP (alpha kept) and once as JPEG
  (alpha flattened onto white).
- A GIF gives its first frame. A small animation (see the ANIMATION_* budget) is also kept as
  one extra "image/gif" variant at its own size: its blocks are copied with every comment,
  plain-text and foreign application block (XMP, ICC...) and anything after the trailer
  removed, and only after every frame of the result decoded. Animated WebP, APNG and HEIF
  sequences give their first (primary) frame.

`process` runs in worker processes (``web/imaging.py``); what it returns and raises pickles.
It changes no global state, so it could run in threads as well: no
`Image.MAX_IMAGE_PIXELS`, no warnings filter, no `LOAD_TRUNCATED_IMAGES`, no registered
plugin (the decoder's class is instantiated directly, so pillow_heif's opener need not be
registered and `Image.open`'s global bomb check is not involved).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import (
    ExifTags,
    GifImagePlugin,
    Image,
    ImageFile,
    JpegImagePlugin,
    PngImagePlugin,
    WebPImagePlugin,
)

if TYPE_CHECKING:
    from collections.abc import Callable

WIDTHS = (480, 960, 1600)
MAX_EDGE = 2400
WEBP_QUALITY = 80
# method 4 (libwebp's default) costs ~1.8x method 2 for ~2% smaller files; uploads wait on it.
WEBP_METHOD = 2
JPEG_QUALITY = 82
# An animation is kept only within all of these; past them it is reduced to its first frame.
ANIMATION_MAX_BYTES = 2 * 1024 * 1024
ANIMATION_MAX_FRAMES = 400
ANIMATION_MAX_PIXELS = 40_000_000  # frames x canvas pixels: what validating it decodes
_LOOP_BLOCKS = (b"\x0bNETSCAPE2.0", b"\x0bANIMEXTS1.0")  # the loop count's application blocks

_HEIF_BRANDS = {
    b"heic": "image/heic", b"heix": "image/heic", b"hevc": "image/heic", b"hevx": "image/heic",
    b"heim": "image/heic", b"heis": "image/heic", b"mif1": "image/heif", b"msf1": "image/heif",
}
_PIL_FORMATS = {
    "image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP",
    "image/heic": "HEIF", "image/heif": "HEIF",
}
# What Pillow's and libheif's decoders raise on bytes they cannot read.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError,
                  RuntimeError, struct.error)
_BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True, slots=True)
class Variant:
    """One encoded size of a picture."""

    width: int
    height: int
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ProcessedImage:
    """A picture's variants, ordered by width, then WebP, JPEG, GIF; its size is the largest."""

    width: int
    height: int
    source_type: str
    variants: tuple[Variant, ...]


class ImageRefused(Exception):
    """Bytes that are not a picture this server accepts, with the HTTP status to answer."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def __reduce__(self) -> tuple[type[ImageRefused], tuple[str, str, int]]:
        # Raised in a worker process, it is pickled back to the server whole.
        return ImageRefused, (self.code, self.message, self.status)


def sniff(data: bytes) -> str | None:
    """The image type from the bytes' signature, or None for anything that is not accepted."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        kind = _HEIF_BRANDS.get(data[8:12])
        # A generic mif1/msf1 file may be AVIF, which the HEVC-only decoder cannot read.
        if kind == "image/heif" and _compatible_brands(data) & {b"avif", b"avis"}:
            return None
        return kind
    return None


def process(data: bytes, *, max_pixels: int) -> ProcessedImage:
    """Decode, check, orient, strip, resize and encode an upload; raises ImageRefused."""
    source_type = sniff(data)
    if source_type is None:
        raise ImageRefused("unsupported_image", "not a JPEG, PNG, GIF, WebP or HEIC image", 415)
    limit = _pixel_limit(max_pixels)
    try:
        img = _decoder(source_type)(io.BytesIO(data))
        if img.format != _PIL_FORMATS[source_type]:
            raise SyntaxError(f"decoded as {img.format}")
        _check_pixels(img.size, limit)
        if source_type == "image/jpeg":
            # Let libjpeg scale by 1/2, 1/4 or 1/8 while decoding when the cap allows it.
            img.draft(None, _capped(img.size))
        img.load()
    except _BOMB_ERRORS as exc:
        message = f"the image is over the limit of {limit} pixels"
        raise ImageRefused("too_many_pixels", message, 413) from exc
    except _DECODE_ERRORS as exc:
        raise ImageRefused("corrupt_image", "the image is truncated or corrupt", 422) from exc
    # libheif may decode to another size than its header's: hold that to the limit too.
    _check_pixels(img.size, limit)

    picture = _working(img)
    if picture.size != (capped := _capped(picture.size)):
        picture = picture.resize(capped, Image.Resampling.LANCZOS, reducing_gap=3.0)
    if (transpose := _orientation(img)) is not None:
        picture = picture.transpose(transpose)
    picture = _fresh(_to_srgb(picture, img.info.get("icc_profile")))

    variants = _variants(picture)
    if source_type == "image/gif" and (animation := _kept_animation(data, img.size)):
        variants.append(Variant(img.width, img.height, "image/gif", animation))
    return ProcessedImage(picture.width, picture.height, source_type, tuple(variants))


# -- decoding and checking


def _decoder(source_type: str) -> Callable[[io.BytesIO], ImageFile.ImageFile]:
    if source_type in ("image/heic", "image/heif"):
        # Imported here: it loads libheif and an HEVC codec, which most processes never need.
        import pillow_heif

        return pillow_heif.HeifImageFile
    return {
        "image/jpeg": JpegImagePlugin.JpegImageFile,
        "image/png": PngImagePlugin.PngImageFile,
        "image/gif": GifImagePlugin.GifImageFile,
        "image/webp": WebPImagePlugin.WebPImageFile,
    }[source_type]


def _compatible_brands(data: bytes) -> set[bytes]:
    size = min(int.from_bytes(data[:4], "big"), len(data), 256)
    return {data[i : i + 4] for i in range(16, size - 3, 4)}


def _pixel_limit(max_pixels: int) -> int:
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be positive, got {max_pixels}")
    # Above Pillow's ceiling its own checks (GIF frames, crops) would warn or raise first.
    ceiling = Image.MAX_IMAGE_PIXELS
    return max_pixels if ceiling is None else min(max_pixels, ceiling)


def _check_pixels(size: tuple[int, int], limit: int) -> None:
    width, height = size
    if width * height > limit:
        raise ImageRefused(
            "too_many_pixels", f"{width}x{height} is over the limit of {limit} pixels", 413
        )


def _orientation(img: Image.Image) -> Image.Transpose | None:
    try:
        value = img.getexif().get(ExifTags.Base.Orientation)
    except Exception:  # EXIF is untrusted and only advisory: unreadable means not rotated
        return None
    return _TRANSPOSE.get(value) if isinstance(value, int) else None


# -- converting


def _working(img: Image.Image) -> Image.Image:
    """The picture in RGB, RGBA, L or CMYK (kept for its ICC profile); alpha only if used."""
    if img.mode.startswith("I"):
        # 16-bit grey (PNG): Pillow's convert to L clips at 255 instead of scaling.
        return img.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    if "A" in img.getbands() or "transparency" in img.info:
        rgba = img.convert("RGBA")
        lowest, _ = rgba.getchannel("A").getextrema()
        return rgba if lowest != 255 else rgba.convert("RGB")
    if img.mode in ("RGB", "L", "CMYK"):
        return img
    return img.convert("L" if img.mode == "1" else "RGB")


def _to_srgb(picture: Image.Image, icc: object) -> Image.Image:
    """The picture in RGB or RGBA, its colours converted from its ICC profile to sRGB."""
    alpha = picture.getchannel("A") if picture.mode == "RGBA" else None
    colour = picture.convert("RGB") if alpha is not None else picture
    converted = _icc_to_srgb(colour, icc) if isinstance(icc, bytes) and icc else None
    if converted is None:
        converted = colour if colour.mode == "RGB" else colour.convert("RGB")
    if alpha is not None:
        converted.putalpha(alpha)
    return converted


def _icc_to_srgb(colour: Image.Image, icc: bytes) -> Image.Image | None:
    try:
        from PIL import ImageCms
    except ImportError:  # Pillow built without LittleCMS: the profile is dropped as it is
        return None
    try:
        # Profiles are built per call: LittleCMS profile handles are not shared across threads.
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(
            colour, source, ImageCms.createProfile("sRGB"), outputMode="RGB"
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None  # an unreadable or mismatched profile: the pixels are taken as sRGB


def _fresh(picture: Image.Image) -> Image.Image:
    """The same pixels in a new image that carries no info (EXIF, ICC, XMP, comment)."""
    clean = Image.new(picture.mode, picture.size)
    clean.paste(picture)
    return clean


# -- encoding


def _capped(size: tuple[int, int]) -> tuple[int, int]:
    width, height = size
    scale = MAX_EDGE / max(width, height)
    if scale >= 1:
        return size
    return max(1, round(width * scale)), max(1, round(height * scale))


def _variants(picture: Image.Image) -> list[Variant]:
    """WebP then JPEG for each width, narrowest first."""
    variants: list[Variant] = []
    source = picture
    for width in sorted({width for width in WIDTHS if width < picture.width}, reverse=True):
        # Each from the next wider rather than from the largest: a third of the resizing time.
        height = max(1, round(picture.height * width / picture.width))
        source = source.resize((width, height), Image.Resampling.LANCZOS)
        variants[:0] = _encode(source)
    return [*variants, *_encode(picture)]


def _encode(picture: Image.Image) -> tuple[Variant, Variant]:
    webp = io.BytesIO()
    picture.save(webp, "WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
    if picture.mode == "RGBA":
        flat = Image.new("RGB", picture.size, (255, 255, 255))
        flat.paste(picture, mask=picture.getchannel("A"))
        picture = flat
    jpeg = io.BytesIO()
    picture.save(jpeg, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    return (
        Variant(picture.width, picture.height, "image/webp", webp.getvalue()),
        Variant(picture.width, picture.height, "image/jpeg", jpeg.getvalue()),
    )


# -- animated GIF


def _kept_animation(data: bytes, size: tuple[int, int]) -> bytes | None:
    """The animation without its metadata, if it is within the budget and decodes fully."""
    if len(data) > ANIMATION_MAX_BYTES or max(size) > MAX_EDGE:
        return None
    walked = _gif_without_metadata(data)
    if walked is None:
        return None
    clean, frames = walked
    if not 1 < frames <= ANIMATION_MAX_FRAMES or frames * size[0] * size[1] > ANIMATION_MAX_PIXELS:
        return None
    try:
        gif = GifImagePlugin.GifImageFile(io.BytesIO(clean))
        for frame in range(frames):
            gif.seek(frame)
            gif.load()
            if gif.size != size:
                return None
    except (*_BOMB_ERRORS, *_DECODE_ERRORS):
        return None
    return clean


def _gif_without_metadata(data: bytes) -> tuple[bytes, int] | None:
    """The GIF's blocks that draw it, and its frame count; None if malformed or a frame
    reaches past the canvas."""
    try:
        width, height, flags = struct.unpack_from("<HHB", data, 6)
        pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
        out = [data[:pos]]
        control = b""  # a graphic control block waits for the block it governs
        frames = 0
        while (intro := data[pos]) != 0x3B:
            if intro == 0x21:
                label, end = data[pos + 1], _after_sub_blocks(data, pos + 2)
                if label == 0xF9 and data[pos + 2] == 4:
                    control = b"\x21\xf9\x04" + data[pos + 3 : pos + 7] + b"\x00"
                elif label == 0xFF and data[pos + 2 : pos + 14] in _LOOP_BLOCKS:
                    loops = data[pos + 14 : pos + 18]
                    if loops[:2] == b"\x03\x01":
                        out.append(b"\x21\xff\x0bNETSCAPE2.0" + loops + b"\x00")
                elif label == 0x01:
                    control = b""  # plain text is dropped with the control that governs it
                pos = end  # comments and foreign application blocks (XMP, ICC) are dropped
            elif intro == 0x2C:
                x, y, w, h, local = struct.unpack_from("<HHHHB", data, pos + 1)
                if not w or not h or x + w > width or y + h > height:
                    return None
                table = 3 << ((local & 7) + 1) if local & 0x80 else 0
                end = _after_sub_blocks(data, pos + 11 + table)
                out += [control, data[pos:end]]
                control, frames, pos = b"", frames + 1, end
            else:
                return None
    except (IndexError, struct.error):  # ran past the end: truncated
        return None
    out.append(b"\x3b")  # anything after the trailer is dropped
    return b"".join(out), frames


def _after_sub_blocks(data: bytes, pos: int) -> int:
    while size := data[pos]:
        pos += size + 1
    return pos + 1
