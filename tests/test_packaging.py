"""The wheel installs the code as the package ``bulletin`` and nothing called ``server``;
a checkout cannot load the code a second time under the folder's name."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def wheel(bulletin_wheel: Path) -> Path:
    """The wheel built from this checkout (once per session: tests/conftest.py)."""
    return bulletin_wheel


def test_the_wheel_holds_bulletin_and_no_server(wheel: Path) -> None:
    """Every module in the wheel is under bulletin/, with the browser files, templates and
    migrations the server loads at run time."""
    names = zipfile.ZipFile(wheel).namelist()
    code = [n for n in names if ".dist-info/" not in n]
    assert code and all(n.startswith("bulletin/") for n in code), code[:5]
    for needed in ("bulletin/cli.py", "bulletin/core/hub.py", "bulletin/web/client_js/client.js",
                   "bulletin/web/client_js/protocol.js", "bulletin/web/client_js/index.d.ts",
                   "bulletin/web/templates/reader.html", "bulletin/store/migrations/env.py",
                   "bulletin/py.typed", "bulletin/web/static/reader.css",
                   "bulletin/store/migrations/script.py.mako",
                   "bulletin/store/migrations/versions/0001_initial_schema.py"):
        assert needed in names, needed


def test_the_wheel_ships_the_license(wheel: Path) -> None:
    """The MIT licence travels with the wheel (pyproject's ``license-files``) and its
    metadata names it with an SPDX expression, with the project's URLs."""
    archive = zipfile.ZipFile(wheel)
    (license_name,) = [n for n in archive.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
    assert archive.read(license_name) == (ROOT / "LICENSE").read_bytes()
    assert b"MIT License" in archive.read(license_name)
    (metadata_name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
    metadata = archive.read(metadata_name).decode()
    assert "License-Expression: MIT" in metadata
    for label in ("Homepage", "Documentation", "Changelog", "Issues"):
        assert f"Project-URL: {label}, https://" in metadata, label


def test_the_installed_wheel_imports_bulletin_and_runs_the_cli(
        wheel: Path, tmp_path: Path) -> None:
    """Installed with pip into a clean virtual environment, ``import bulletin`` works from
    the environment's own site-packages, ``import server`` finds nothing, and the
    ``bulletin`` command runs from another directory."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python, command = env_dir / "bin" / "python", env_dir / "bin" / "bulletin"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True, text=True, timeout=300)
    # The dependencies come from this environment (there is no network to fetch them).
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True).stdout.strip()
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (Path(site) / "bulletin-test-deps.pth").write_text("\n".join(deps) + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    probe = ("import importlib.util, bulletin, bulletin.web.app\n"
             "print(bulletin.__file__)\n"
             "print(importlib.util.find_spec('server'))\n")
    result = subprocess.run([str(python), "-c", probe], cwd=elsewhere, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    location, spec = result.stdout.split()
    assert location.startswith(site), location
    assert spec == "None"
    cli = subprocess.run([str(command), "--help"], cwd=elsewhere, env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert cli.returncode == 0, cli.stderr
    assert "serve" in cli.stdout


def test_the_source_folder_cannot_be_imported_as_server() -> None:
    """From a checkout, ``server`` is a plain folder on the path; importing it refuses, so
    no module is ever loaded twice under two names."""
    result = subprocess.run([sys.executable, "-c", "import server"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert "import bulletin, not server" in result.stderr
