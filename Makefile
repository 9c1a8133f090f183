# aecflow — `make run` and `make test` set themselves up on first use.
# uv comes from PyPI (pip) when it is not installed; Python is the machine's own (>= 3.11).

SHELL := /bin/bash
VENV := .venv
UV ?= $(shell command -v uv 2>/dev/null || echo $(VENV)-tools/bin/uv)
export UV_PYTHON_DOWNLOADS ?= never
PYTHON ?= python3
PYTHON_OK := $(shell $(PYTHON) -c 'import sys; print(int(sys.version_info >= (3, 11)))' 2>/dev/null)
ifneq ($(PYTHON_OK),1)
$(error aecflow needs Python 3.11 or newer as $(PYTHON); set PYTHON=/path/to/python3.11)
endif

.PHONY: setup run test lint bench clean

$(VENV)-tools/bin/uv:
	$(PYTHON) -m venv $(VENV)-tools
	$(VENV)-tools/bin/pip install --quiet --disable-pip-version-check "uv>=0.5"

$(VENV)/.synced: pyproject.toml uv.lock core/pyproject.toml $(wildcard plugins/*/pyproject.toml) $(wildcard examples/*/pyproject.toml) | $(UV)
	$(UV) sync --frozen --python $(shell $(PYTHON) -c 'import sys; print(sys.executable)')
	@touch $@

setup: $(VENV)/.synced ## Create .venv with the core, the plugins and the dev tools.

CONFIG ?=

run: setup ## Run the HTTP host: ./aecflow.toml when present, CONFIG=FILE to name one, else the embedded defaults.
	$(VENV)/bin/aecflow $(if $(CONFIG),--config "$(CONFIG)") serve

test: setup ## The whole test suite (PostgreSQL tests skip loudly without a server).
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

lint: setup ## ruff, mypy and the import layers (.importlinter).
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports .importlinter

bench: setup ## Benchmarks: print figures, never pass/fail.
	@for script in bench/*.py; do echo "== $$script"; $(VENV)/bin/python $$script || exit 1; done

clean:
	rm -rf $(VENV) $(VENV)-tools aecflow-data .pytest_cache .ruff_cache
