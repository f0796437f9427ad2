# Brygga: `make run` serves the embedded default; `make test` runs the whole suite.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
WEB_STAMP := client_web/dist/index.html
WEB_NODE_STAMP := client_web/node_modules/.package-lock.json
NODE_TEST_STAMP := tests/node/node_modules/.installed-stamp
export BRYGGA_DATA_DIR ?= $(CURDIR)/var

.PHONY: run test setup system web api-types lint typecheck pytest security clean bench bench-peers

run: setup web
	@$(PY) -m server migrate
	@$(PY) -m server seed-demo
	@echo "Brygga: open http://localhost:8080  (Ctrl-C stops)"
	@exec $(PY) -m server serve

test: setup web $(NODE_TEST_STAMP) lint typecheck security pytest

system:
	@bash scripts/ensure-system.sh

setup: system $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

web: $(WEB_STAMP)

# npm ci writes node_modules/.package-lock.json; the build needs the installed packages and every input.
$(WEB_NODE_STAMP): client_web/package.json client_web/package-lock.json
	cd client_web && npm ci --no-audit --no-fund --loglevel=error

$(WEB_STAMP): $(WEB_NODE_STAMP) $(shell find client_web/src client_web/public -type f 2>/dev/null) client_web/index.html client_web/meeting.html client_web/tsconfig.json client_web/vite.config.ts
	cd client_web && npm run build

# The client's API types (client_web/src/api.gen.ts) from the server's OpenAPI document, no server needed.
# tests/web/test_api_types.py fails `make test` when the committed file drifts from the server.
api-types: $(STAMP) $(WEB_NODE_STAMP)
	$(PY) scripts/api_types.py

$(NODE_TEST_STAMP): tests/node/package.json tests/node/package-lock.json
	cd tests/node && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

lint: $(STAMP)
	$(VENV)/bin/ruff check $(wildcard server auth tests bench)

typecheck: $(STAMP)
	$(VENV)/bin/mypy server auth

pytest: $(STAMP)
	$(PY) -m pytest -q -ra --durations=15 --ignore=tests/security $(PYTEST_ARGS)

# Security gate (docs/security.md): bandit, pip-audit, schemathesis with a token, websocket hijacking.
security: $(STAMP) web
	$(VENV)/bin/bandit -q -r server auth -ll
	@bash scripts/pip-audit.sh
	$(PY) -m pytest -q -ra tests/security

bench: setup
	$(PY) bench/directory.py

# Brygga beside ejabberd, same workloads in one run (docs/messaging.md). Not part of `make test`.
bench-peers: setup
	@bash scripts/ensure-system.sh ejabberd erlang-p1-sqlite3  # the archive in SQLite needs the Erlang driver
	$(PY) -m pip install -q -e '.[dev,peers]'
	$(PY) bench/peers.py

clean:
	rm -rf $(VENV) client_web/node_modules client_web/dist tests/node/node_modules var
