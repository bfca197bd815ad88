"""Pin every direct dependency of pyproject.toml to its floor, for `make test-oldest`.

    python .ci/oldest_constraints.py constraints    # a pip constraints file: name==floor
    python .ci/oldest_constraints.py requirements   # the test extra, without the browser's

pip has no "lowest direct" resolution (uv's --resolution=lowest-direct), so the floors are
read from pyproject.toml and pinned: what the tests then install is exactly the oldest set
the project claims to work with, and the dependencies' own dependencies resolve as they
would for a user installing it today. Every requirement must have a `>=` floor.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
# The browser tests are not among the fast tests, so their driver is not installed.
NOT_INSTALLED = {"playwright"}
_REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<extras>\[[^\]]*\])?"
                          r"\s*>=\s*(?P<floor>[0-9][A-Za-z0-9.]*)\s*$")


def _parse(requirement: str) -> tuple[str, str, str]:
    match = _REQUIREMENT.match(requirement)
    if match is None:
        raise SystemExit(f"{PYPROJECT.name}: {requirement!r} has no plain `name>=floor` "
                         "lower bound for test-oldest to pin")
    return match["name"].lower(), match["extras"] or "", match["floor"]


def main(what: str) -> int:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    runtime = [_parse(r) for r in project["dependencies"]]
    test = [_parse(r) for r in project["optional-dependencies"]["test"]]
    if what == "constraints":
        floors: dict[str, str] = {}
        for name, _extras, floor in runtime + test:
            if floors.setdefault(name, floor) != floor:
                raise SystemExit(f"{name} has two floors: {floors[name]} and {floor}")
        print(f"# The floors of {PYPROJECT.name}, made by .ci/oldest_constraints.py.")
        print("\n".join(f"{name}=={floor}" for name, floor in sorted(floors.items())))
    elif what == "requirements":
        print("\n".join(f"{name}{extras}" for name, extras, _floor in test
                        if name not in NOT_INSTALLED))
    else:
        raise SystemExit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) == 2 else ""))
