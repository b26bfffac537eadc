# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test test-fast lint bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[postgres]' --group dev
	touch $(STAMP)

## Seed and serve the demo on SQLite at http://127.0.0.1:8000
demo: venv
	$(VENV)/bin/carpeta demo

## The whole suite, on SQLite and on a throwaway PostgreSQL cluster (always stopped)
test: venv
	$(PY) -m tests.pgcluster -- sh -c '$(PY) -m pytest -q -m "not browser" $(PYTEST_ARGS) && $(PY) -m pytest -q -m browser $(PYTEST_ARGS)'

## Without PostgreSQL (quick local loop)
test-fast: venv
	CARPETA_TEST_SKIP_POSTGRES=1 $(PY) -m pytest -q -m "not postgres" $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

## SPEC budgets: browser bytes and 2G timings, then the server scenarios (bench/results/)
bench: venv
	CARPETA_PWA_RESULTS=bench/results/pwa.json $(PY) -m pytest -q -m browser tests/e2e/test_pwa_shell.py
	$(PY) -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
