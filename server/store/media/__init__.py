"""Media storage: where uploaded photos' files are kept, picked by URL like the database
and the broker (``file:///path`` today)."""

from __future__ import annotations

from .base import MediaStore, MediaUnavailable
from .file import FileMediaStore

__all__ = ["FileMediaStore", "MediaStore", "MediaUnavailable", "media_store_from_url"]


def media_store_from_url(url: str) -> MediaStore:
    """The storage a BULLETIN_MEDIA_URL names."""
    if url.startswith("file://"):
        return FileMediaStore.from_url(url)
    raise ValueError(f"unsupported media storage {url!r}; use file:///path")
