"""The browser files: client_js/ modules and server/static/, served under a version.

Every file is read once when the app starts. Its URL carries a version, the hash of all
the files together, so the ES modules can import each other by relative path and every
URL can be cached for a year: a new release has a new version and so new URLs. A request
for an old version still gets the current file, but with ``no-cache``, so that a page
cached across a deploy keeps working. Every response has an ETag.

JavaScript is served minified (rjsmin: comments and spaces out, nothing renamed), so that
splitting the client into modules by idea, each with its doc comment, costs the reader no
bytes; ``minify=False`` serves the files as written. The modules' static imports are
read once too (``preloads``), so that a page can name
every module its script will import in ``<link rel="modulepreload">`` tags: the browser
fetches them all at once instead of discovering them one import level at a time.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path

import rjsmin

PACKAGE_DIR = Path(__file__).resolve().parent
# client_js/ sits beside the package in a checkout; server/client_js links to it, so that a
# built wheel carries a copy inside the package.
SOURCES = (PACKAGE_DIR / "client_js", PACKAGE_DIR / "static")
SERVED_SUFFIXES = {".js", ".mjs", ".css", ".svg", ".png", ".ico", ".woff2", ".d.ts"}
PREFIX = "/static"
IMMUTABLE = "public, max-age=31536000, immutable"

# A static import or re-export of a sibling module: `import {a} from "./x.js"`,
# `export {b} from "./y.js"`, `import "./z.js"`.
_IMPORT = re.compile(rb'(?:^|[;\s])(?:import|export)\b[^;"\']*?(?:\bfrom\s*)?"\./([\w.-]+\.m?js)"',
                     re.MULTILINE)
_TYPES = {".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml",
          ".ts": "text/plain; charset=utf-8"}


@dataclass(frozen=True, slots=True)
class Asset:
    """One file, in memory."""

    name: str
    body: bytes
    etag: str
    media_type: str


class Assets:
    """The files under their versioned URLs."""

    def __init__(self, sources: tuple[Path, ...] = SOURCES, *, minify: bool = True) -> None:
        files: dict[str, Asset] = {}
        imports: dict[str, list[str]] = {}
        whole = hashlib.sha256()
        for directory in sources:
            if not directory.is_dir():
                continue
            for path in sorted(directory.iterdir()):
                if not path.is_file() or not _served(path.name) or path.name in files:
                    continue  # (a name in an earlier source wins)
                body = path.read_bytes()
                if path.suffix in (".js", ".mjs"):
                    imports[path.name] = [m.decode() for m in _IMPORT.findall(body)]
                    if minify:
                        body = rjsmin.jsmin(body)
                digest = hashlib.sha256(body).hexdigest()
                whole.update(path.name.encode() + b"\0" + digest.encode())
                media = _TYPES.get(path.suffix) or (
                    mimetypes.guess_type(path.name)[0] or "application/octet-stream")
                files[path.name] = Asset(path.name, body, f'"{digest[:20]}"', media)
        self.files = files
        self.version = whole.hexdigest()[:12]
        # The static imports of each module, read from its source.
        self.imports = imports

    def url(self, name: str) -> str:
        """The cacheable URL of a file; a name that does not exist is a programming error."""
        if name not in self.files:
            raise KeyError(f"no asset named {name!r} (looked in {', '.join(map(str, SOURCES))})")
        return f"{PREFIX}/{self.version}/{name}"


    def preloads(self, entry: str) -> list[str]:
        """The URLs of ``entry`` and every module it imports, directly or not, in the
        order a depth-first walk of the imports meets them."""
        order: list[str] = []

        def visit(name: str) -> None:
            if name in order:
                return
            if name not in self.imports:
                raise KeyError(f"no module named {name!r} (imported on the way to {entry!r})")
            order.append(name)
            for imported in self.imports[name]:
                visit(imported)

        visit(entry)
        return [self.url(name) for name in order]


def _served(name: str) -> bool:
    return any(name.endswith(suffix) for suffix in SERVED_SUFFIXES) and not name.startswith(".")
