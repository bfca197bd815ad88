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

.PHONY: run test lint format clean

run: $(INSTALLED)
	$(BIN)/bulletin serve --demo

test: $(INSTALLED) $(AXE)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

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
	$(BIN)/ruff check server tests alembic bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	cd client_js && node_modules/.bin/tsc -p tsconfig.json

format: $(INSTALLED)
	$(BIN)/ruff check --fix server tests alembic bench

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "error: Python 3.11 or newer is needed (python3.11, python3.12 ...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

clean:
	rm -rf $(VENV) tests/browser/node_modules client_js/node_modules bulletin.db bulletin.db-wal bulletin.db-shm .bulletin-secret
