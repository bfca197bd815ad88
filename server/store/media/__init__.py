"""Media storage: where uploaded photos' files are kept, picked by URL like the database
and the broker (``file:///path``, or ``s3://bucket/prefix``)."""

from __future__ import annotations

from ...settings import Settings
from .base import MediaStore, MediaUnavailable
from .file import FileMediaStore

__all__ = ["FileMediaStore", "MediaStore", "MediaUnavailable", "media_store_from_url"]


def media_store_from_url(url: str, settings: Settings) -> MediaStore:
    """The storage a BULLETIN_MEDIA_URL names, set up by the other media settings; the S3
    client is imported only when chosen."""
    if url.startswith("file://"):
        return FileMediaStore.from_url(url, settings.media_public_url)
    if url.startswith("s3://"):
        from .s3 import S3MediaStore

        return S3MediaStore.from_url(url, settings)
    raise ValueError(f"unsupported media storage {url!r}; use file:///path or s3://bucket/prefix")
