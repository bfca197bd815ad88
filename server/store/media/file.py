"""Media files in a local folder (``file:///path``): the default, so that a laptop needs
nothing else. Several machines need shared storage instead.

Writes go to a temporary file in the same folder and are renamed into place, so a reader
never sees half a file; the folder and files are created readable by everyone (they are
public photos) and writable by the server only. The blocking file calls run in a worker
thread.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .base import MediaUnavailable

# Names are chosen by Bulletin (content hash, width, extension): nothing else is accepted,
# so no name can climb out of the folder.
NAME_RE = re.compile(r"^[0-9a-f]{16,64}(?:-[0-9]{1,5})?\.(?:webp|jpg|gif)$")


class FileMediaStore:
    """A folder of media files."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def from_url(cls, url: str) -> FileMediaStore:
        """``file:///absolute/path``."""
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise ValueError(f"media URL must be file:///absolute/path, got {url!r}")
        return cls(Path(unquote(parts.path)))

    def _path(self, name: str) -> Path:
        if not NAME_RE.match(name):
            raise ValueError(f"not a media file name: {name!r}")
        return self.root / name

    async def put(self, name: str, data: bytes, content_type: str) -> None:
        """Write ``data`` under ``name``, atomically."""
        path = self._path(name)
        try:
            await asyncio.to_thread(self._write, path, data)
        except OSError as exc:
            raise MediaUnavailable(f"could not write {name}: {exc}") from exc

    def _write(self, path: Path, data: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    async def get(self, name: str) -> bytes | None:
        """The file's bytes, or None."""
        try:
            path = self._path(name)
        except ValueError:
            return None
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise MediaUnavailable(f"could not read {name}: {exc}") from exc

    async def delete(self, name: str) -> None:
        """Remove the file if it is there."""
        path = self._path(name)
        try:
            await asyncio.to_thread(path.unlink, True)
        except OSError as exc:
            raise MediaUnavailable(f"could not delete {name}: {exc}") from exc

    def url(self, name: str) -> str:
        """Bulletin serves the folder itself, under /media/."""
        return f"/media/{name}"
