# Every target runs inside .venv, created by `make dev`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: dev test lint format infra-tests mutation demo bench synth clean

dev: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

test: dev
	$(PY) -m pytest -n 2 --dist loadgroup

lint: dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy lambdas autopilot infra

format: dev
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

infra-tests: dev
	$(PY) -m pytest tests/infra

# Mutation testing of the core domain modules against their fast unit tests (pyproject.toml
# [tool.mutmut]); a few minutes on 2 cores, so not part of CI. Results: docs/testing.md.
mutation: dev
	rm -rf mutants
	$(PY) -m mutmut run --max-children 2
	$(PY) -m mutmut results

synth: dev
	$(PY) app.py

demo: dev
	$(VENV)/bin/autopilot local run

bench: dev
	$(PY) -m bench.run_all

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache .local-stack mutants
