"""A processed photo's files: their names, and writing them to a media store.

Every file is named from the SHA-256 of the bytes uploaded, its width and its type
(``{digest[:32]}-{width}.{webp|jpg|gif}``), so a name always means the same bytes and the
same upload stores the same files. Used by uploads, by oEmbed thumbnails and by the demo.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...core.images import Variant
from .base import MediaStore
from .records import StoredVariant

EXTENSIONS = {"image/webp": "webp", "image/jpeg": "jpg", "image/gif": "gif"}
CONTENT_TYPES = {extension: kind for kind, extension in EXTENSIONS.items()}


def named(digest: str, variants: Sequence[Variant]) -> list[StoredVariant]:
    """The stored form of each variant: its size, type and file name."""
    return [StoredVariant(v.width, v.height, v.content_type,
                          f"{digest[:32]}-{v.width}.{EXTENSIONS[v.content_type]}")
            for v in variants]


async def put_variants(store: MediaStore, digest: str, variants: Sequence[Variant],
                       written: list[str]) -> list[StoredVariant]:
    """Write every variant; each name is added to ``written`` once it is stored, so that a
    caller whose write fails part-way knows which files to remove (MediaUnavailable)."""
    stored = named(digest, variants)
    for variant, row in zip(variants, stored, strict=True):
        await store.put(row.name, variant.data, variant.content_type)
        written.append(row.name)
    return stored
