# Two commands do all the set-up on a fresh machine with Python 3.11+:
#   make run    serve a demo story on http://127.0.0.1:8000
#   make test   run the whole test suite
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
AXE := tests/browser/node_modules/axe-core/axe.min.js
TSC := client_js/node_modules/.bin/tsc

.PHONY: run test test-oldest lint format clean

run: $(INSTALLED)
	$(BIN)/bulletin serve --demo

test: $(INSTALLED) $(AXE)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The fast tests against the oldest version of every dependency that pyproject.toml
# allows (each direct dependency pinned to its floor by .ci/oldest_constraints.py), on the
# oldest Python it allows, in a virtual environment of their own. No browser, no nginx.
OLDEST := .venv-oldest
OLDEST_PYTHON ?= python3.11
# The wings' tests (the web's against SQLite only: tests/store covers PostgreSQL), the
# command line and the transport limits (real `bulletin serve` processes: uvicorn's
# private parts at work).
OLDEST_TESTS ?= tests/core tests/live tests/store tests/web tests/test_cli.py \
	tests/test_version.py tests/integration/test_transport_limits.py

test-oldest: $(OLDEST)/.installed
	$(OLDEST)/bin/python -m pytest -q -p no:cacheprovider -k "not postgres or store" \
		$(OLDEST_TESTS) $(PYTEST_ARGS)

$(OLDEST)/.installed: pyproject.toml .ci/oldest_constraints.py
	$(OLDEST_PYTHON) -m venv --clear $(OLDEST)
	$(OLDEST_PYTHON) .ci/oldest_constraints.py constraints > $(OLDEST)/constraints.txt
	$(OLDEST)/bin/python -m pip install --quiet --upgrade pip
	$(OLDEST)/bin/python -m pip install --quiet -c $(OLDEST)/constraints.txt -e . \
		$$($(OLDEST_PYTHON) .ci/oldest_constraints.py requirements)
	$(OLDEST)/bin/python -m pip freeze --exclude-editable > $(OLDEST)/installed.txt
	@touch $@

# axe-core (npm) for the browser tests' accessibility audit. Without npm the audit skips
# with its reason (and fails under BULLETIN_REQUIRE_BROWSER=1, as on CI).
$(AXE): tests/browser/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		cd tests/browser && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/axe-core/axe.min.js; \
	else echo "npm not found: the accessibility audit will be skipped"; fi

# TypeScript (npm, pinned in client_js/package-lock.json) checks the client's JSDoc types
# and index.d.ts against client.js.
$(TSC): client_js/package-lock.json
	cd client_js && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.bin/tsc

lint: $(INSTALLED) $(TSC)
	$(BIN)/ruff check server tests alembic bench .ci
	$(BIN)/mypy
	$(BIN)/lint-imports
	cd client_js && node_modules/.bin/tsc -p tsconfig.json

format: $(INSTALLED)
	$(BIN)/ruff check --fix server tests alembic bench .ci

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "error: Python 3.11 or newer is needed (python3.11, python3.12 ...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

clean:
	rm -rf $(VENV) $(OLDEST) tests/browser/node_modules client_js/node_modules bulletin.db bulletin.db-wal bulletin.db-shm .bulletin-secret
