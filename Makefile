# video-ingest developer entry points.
#
#   make demo    ingest 200 synthetic videos on an embedded Prefect server
#   make test    unit, integration and chart tests (what CI runs first)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: help venv demo test test-unit test-integration test-chart lint

help: ## List the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed ## The project's virtualenv with the dev tools

demo: venv ## Ingest 200 synthetic videos on an embedded Prefect server
	$(VENV)/bin/video-ingest run --demo 200 --retry-delay 0

test: venv ## Unit, integration and chart tests
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: venv ## Pure logic only, no server
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: venv ## Against a real Prefect server the tests start
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)
