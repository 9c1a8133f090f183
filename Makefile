# aecflow — `make run` and `make test` set themselves up on first use.
# uv comes from PyPI (pip) when it is not installed; Python is the machine's own (>= 3.11).

SHELL := /bin/bash
VENV := .venv
# `make run` uses its own environment: the service and its plugins, none of the dev tools.
RUN_VENV ?= .venv-run
# Third-party plugins for the run environment, one requirement a line (pip's format; gitignored).
PLUGINS ?= plugins.txt
UV ?= $(shell command -v uv 2>/dev/null || echo $(VENV)-tools/bin/uv)
export UV_PYTHON_DOWNLOADS ?= never
PYTHON ?= python3
PYTHON_OK := $(shell $(PYTHON) -c 'import sys; print(int(sys.version_info >= (3, 11)))' 2>/dev/null)
ifneq ($(PYTHON_OK),1)
$(error aecflow needs Python 3.11 or newer as $(PYTHON); set PYTHON=/path/to/python3.11)
endif

SYSTEM_PYTHON := $(shell $(PYTHON) -c 'import sys; print(sys.executable)')

.PHONY: setup setup-run plugin run test coverage lint bench clean js web

$(VENV)-tools/bin/uv:
	$(PYTHON) -m venv $(VENV)-tools
	$(VENV)-tools/bin/pip install --quiet --disable-pip-version-check "uv>=0.5"

$(VENV)/.synced: pyproject.toml uv.lock core/pyproject.toml $(wildcard plugins/*/pyproject.toml) $(wildcard examples/*/pyproject.toml) | $(UV)
	$(UV) sync --frozen --python $(SYSTEM_PYTHON)
	@touch $@

setup: $(VENV)/.synced ## Create .venv with the core, the plugins and the dev tools.

$(RUN_VENV)/.synced: pyproject.toml uv.lock core/pyproject.toml $(wildcard plugins/*/pyproject.toml) | $(UV)
	UV_PROJECT_ENVIRONMENT="$(RUN_VENV)" $(UV) sync --frozen --no-default-groups --group run --python $(SYSTEM_PYTHON)
	@touch "$@"

# The sync is exact and removes what the lock does not name, so plugins.txt is installed after it,
# every time (a no-op when nothing is missing): a plugin survives any later sync.
setup-run: $(RUN_VENV)/.synced ## Create .venv-run with the core and its plugins (group `run`), then install plugins.txt.
	@if [ -s "$(PLUGINS)" ]; then $(UV) pip install --python "$(RUN_VENV)/bin/python" -r "$(PLUGINS)"; fi

PKG ?=

plugin: $(RUN_VENV)/.synced ## Add a third-party plugin to the run environment: make plugin PKG=aecflow-storage-gcs
	@if [ -z '$(PKG)' ]; then echo "usage: make plugin PKG=REQUIREMENT (a name, a version range, a wheel or a directory)"; exit 2; fi
	$(UV) pip install --python "$(RUN_VENV)/bin/python" $(if $(wildcard $(PLUGINS)),-r "$(PLUGINS)") '$(PKG)'
	@grep -qxF -- '$(PKG)' "$(PLUGINS)" 2>/dev/null || echo '$(PKG)' >> "$(PLUGINS)"

CONFIG ?=

run: setup-run ## Run the HTTP host: ./aecflow.toml when present, CONFIG=FILE to name one, else the embedded defaults.
	"$(RUN_VENV)/bin/aecflow" $(if $(CONFIG),--config "$(CONFIG)") serve

tests/js/node_modules/.installed: tests/js/package.json tests/js/package-lock.json
	cd tests/js && npm ci --no-audit --no-fund
	@touch $@

js: tests/js/node_modules/.installed ## Node test clients (tus-js-client) from tests/js/package-lock.json.

test: setup js ## The whole test suite (PostgreSQL tests skip loudly without a server).
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

# COVERAGE_FILE is absolute so that child processes started in another directory (the isolation
# child runs in its scratch directory) write their .coverage.* files here, where combine looks.
# ARGS passes pytest arguments through: make coverage ARGS="tests/test_isolation.py -q".
ARGS ?=

coverage: setup js ## The test suite under coverage.py (lines, branches, child processes): report + htmlcov/.
	$(VENV)/bin/coverage erase
	COVERAGE_FILE="$(CURDIR)/.coverage" $(VENV)/bin/coverage run -m pytest $(ARGS); status=$$?; \
	COVERAGE_FILE="$(CURDIR)/.coverage" $(VENV)/bin/coverage combine -q && \
	$(VENV)/bin/coverage report && $(VENV)/bin/coverage html -q && \
	echo "HTML report: htmlcov/index.html" && exit $$status

lint: setup ## ruff, mypy and the import layers (.importlinter).
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports .importlinter

# The web page's vendored Uppy bundle (core/src/aecflow/host/web/uppy.js), from web/package-lock.json:
# byte-identical for the same lock (tests/test_web.py checks the committed one when npm exists).
web: ## Rebuild the web page's Uppy bundle with npm (development time only; the bundle is committed).
	cd web && npm ci --no-audit --no-fund --loglevel=error && node build.mjs

bench: setup ## Benchmarks: print figures, never pass/fail.
	@for script in bench/*.py; do echo "== $$script"; $(VENV)/bin/python $$script || exit 1; done

clean:
	rm -rf $(VENV) $(VENV)-tools $(RUN_VENV) aecflow-data .pytest_cache .ruff_cache htmlcov .coverage .coverage.*
