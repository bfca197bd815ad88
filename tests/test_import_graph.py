"""The package's import graph has no circle, type-only imports included (the wings'
walls themselves are import-linter contracts, run by `make lint`)."""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest


def test_no_module_imports_itself_through_others() -> None:
    """No module of bulletin reaches itself through its imports, counting the imports
    made only for type checking: each module can be read, and tested, below the ones
    that use it."""
    graph = grimp.build_graph("bulletin", cache_dir=None)
    circles = sorted(
        (module, imported)
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
        if graph.chain_exists(importer=imported, imported=module)
    )
    assert circles == []


def test_the_graph_sees_type_only_imports(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above counts imports under ``if TYPE_CHECKING`` (the kind of circle the
    house once had between services and the hub driver): in a package whose only circle
    is type-only, the graph finds it."""
    package = tmp_path / "typeonly"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from typing import TYPE_CHECKING\n"
                                  "if TYPE_CHECKING:\n    from . import b\n")
    (package / "b.py").write_text("from . import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("typeonly", cache_dir=None)
    assert graph.chain_exists(importer="typeonly.a", imported="typeonly.b")
    assert graph.chain_exists(importer="typeonly.b", imported="typeonly.a")
