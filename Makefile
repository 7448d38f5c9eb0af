# Every target runs inside .venv, created by `make dev`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: dev check browser test lint format infra-tests mutation demo bench synth clean

dev: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

# What CI runs (.ci/run) and README's test command: the linters, then the whole suite (which
# includes cdk-nag and cfn-lint on the synthesized template).
check: browser lint test

# Headless Chromium (Debian's package) for the report's screenshot test; installed when missing
# and apt-get can (root). Without it that one check is skipped outside CI and fails in CI.
browser:
	@command -v chromium-headless-shell >/dev/null 2>&1 || command -v chromium >/dev/null 2>&1 || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium-headless-shell) >/dev/null; \
	    else echo "note: no headless Chromium (apt-get install chromium-headless-shell); the report screenshot test will skip"; fi; }

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
