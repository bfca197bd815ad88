"""Bulletin: a live-update push server for live stories.

The source lives in ``server/`` and is installed as the package ``bulletin``; see
docs/architecture.md for its four wings (core, store, live, web).
"""

from importlib.metadata import PackageNotFoundError, version

if __name__ != "bulletin":  # pragma: no cover - a guard against a second copy
    # From a checkout, ``server`` is importable as a plain directory too. Loading the code
    # under two names would make two of every module (two hubs, two settings classes).
    raise ImportError(f"import bulletin, not {__name__} (the source folder is server/; "
                      "install it with `pip install -e .`)")

try:
    # One source for the version: pyproject.toml's, as installed (``bulletin --version``,
    # ``GET /``, the OpenAPI document; client_js/package.json is kept equal by a test).
    __version__ = version("bulletin")
except PackageNotFoundError:  # pragma: no cover - the guard above needs an install anyway
    __version__ = "0+unknown"
