"""Media files in a local folder (``file:///path``): the default, so that a laptop needs
nothing else. Several machines need shared storage instead (a shared folder, or ``s3.py``).

Writes go to a temporary file in the same folder and are renamed into place, so a reader
never sees half a file; the folder and files are created readable by everyone (they are
public photos) and writable by the server only. The blocking file calls run in a worker
thread.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .base import NAME_RE, MediaUnavailable


class FileMediaStore:
    """A folder of media files."""

    def __init__(self, root: Path, public_url: str = "") -> None:
        self.root = root
        # A CDN in front of Bulletin's /media/ (https://cdn.example.com/media): readers are
        # sent there instead.
        self.public_base = public_url.rstrip("/") or "/media"

    @classmethod
    def from_url(cls, url: str, public_url: str = "") -> FileMediaStore:
        """``file:///absolute/path``; ``public_url`` is where readers fetch the files."""
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise ValueError(f"media URL must be file:///absolute/path, got {url!r}")
        return cls(Path(unquote(parts.path)), public_url)

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

    def local_path(self, name: str) -> Path | None:
        """The file's path in the folder (it may not exist)."""
        try:
            return self._path(name)
        except ValueError:
            return None

    async def delete(self, name: str) -> None:
        """Remove the file if it is there."""
        path = self._path(name)
        try:
            await asyncio.to_thread(path.unlink, True)
        except OSError as exc:
            raise MediaUnavailable(f"could not delete {name}: {exc}") from exc

    def url(self, name: str) -> str:
        """Bulletin serves the folder itself, under /media/ (or a CDN in front of it)."""
        return f"{self.public_base}/{name}"
