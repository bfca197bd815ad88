"""One version everywhere: pyproject.toml's, as installed, is what ``bulletin --version``,
``GET /``, the OpenAPI document and the client library's package.json say, and
CHANGELOG.md has a section for it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import httpx

import bulletin

ROOT = Path(__file__).resolve().parent.parent


def project_version() -> str:
    """The version written in pyproject.toml, the one source."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        written: str = tomllib.load(f)["project"]["version"]
    return written


def test_the_installed_package_has_the_pyproject_version() -> None:
    """``bulletin.__version__`` is the installed distribution's, which is pyproject's
    (reinstall with ``make .venv/.installed`` after changing it)."""
    assert bulletin.__version__ == version("bulletin") == project_version()


def test_the_command_prints_the_version() -> None:
    """``bulletin --version`` prints ``bulletin X.Y.Z``."""
    result = subprocess.run([sys.executable, "-m", "bulletin.cli", "--version"],
                            capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == f"bulletin {project_version()}"


async def test_the_index_and_the_openapi_document_carry_the_version(
        client: httpx.AsyncClient) -> None:
    """``GET /`` (JSON) and ``info.version`` of ``/api/openapi.json`` are the version."""
    index = (await client.get("/", headers={"Accept": "application/json"})).json()
    document = (await client.get("/api/openapi.json")).json()
    assert index["version"] == document["info"]["version"] == project_version()


def test_the_client_library_has_the_same_version() -> None:
    """client_js/package.json and its lock file name the server's version: the client
    and the server are released together."""
    package = json.loads((ROOT / "client_js" / "package.json").read_text())
    lock = json.loads((ROOT / "client_js" / "package-lock.json").read_text())
    assert package["version"] == project_version(), (
        "client_js/package.json's version differs from pyproject.toml's: change both")
    assert lock["version"] == lock["packages"][""]["version"] == project_version(), (
        "client_js/package-lock.json is out of date: run `npm install` in client_js/")


def test_the_changelog_has_a_section_for_the_version() -> None:
    """CHANGELOG.md (Keep a Changelog) has a ``## [X.Y.Z] - YYYY-MM-DD`` heading for the
    version being released, and a link for it at the bottom."""
    changelog = (ROOT / "CHANGELOG.md").read_text()
    current = re.escape(project_version())
    assert re.search(rf"(?m)^## \[{current}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog)
    assert re.search(rf"(?m)^\[{current}\]: https://", changelog)
