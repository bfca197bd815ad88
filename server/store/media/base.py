"""The contract of a media store.

Files are written once under a name derived from their content (the caller picks it), so
a name always means the same bytes: readers and CDNs may cache them for a year. ``put``
is atomic (a reader sees the whole file or none), ``delete`` of a missing name is not an
error, and a store that cannot be reached raises ``MediaUnavailable``, never a
backend-specific error.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

# Names are chosen by Bulletin (content hash, width, extension): nothing else is accepted,
# so no name can climb out of a folder or a bucket's prefix.
NAME_RE = re.compile(r"^[0-9a-f]{16,64}(?:-[0-9]{1,5})?\.(?:webp|jpg|gif)$")
# A name always means the same bytes, so whoever serves a file may let it be kept a year.
CACHE_CONTROL = "public, max-age=31536000, immutable"


class MediaUnavailable(Exception):
    """The store could not be reached or refused the operation."""


class MediaStore(Protocol):
    """Where photos' files are kept."""

    async def put(self, name: str, data: bytes, content_type: str) -> None:
        """Store ``data`` under ``name`` (atomically; an existing name is overwritten with
        the same bytes)."""

    async def get(self, name: str) -> bytes | None:
        """The bytes stored under ``name``, or None."""

    async def delete(self, name: str) -> None:
        """Remove ``name``; a name that is not there is not an error."""

    def local_path(self, name: str) -> Path | None:
        """Where ``name`` is on this machine's disk, so that it can be sent from the file
        (ranges, the kernel's sendfile), or None for a store that keeps files elsewhere."""

    def url(self, name: str) -> str:
        """The public URL readers fetch ``name`` from (a path on Bulletin, or a bucket's or
        CDN's absolute URL)."""
