# The two commands a newcomer needs: `make run` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test fuzz lint docs docs-serve doc-tools browser fmt bench clean

# authserver depends on authserver-verify (verify/, the resource-server verifier), which is on no
# package index: both are installed from this checkout in one pip run, so that the requirement
# can only ever be met by ./verify, never by a package of that name on an index.
$(BIN)/.installed: pyproject.toml verify/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ./verify -e '.[dev]'
	touch $@

install: $(BIN)/.installed

## run: serve on the embedded default (SQLite under var/, no configuration needed)
run: install
	$(BIN)/authserver serve

## lint: ruff (lint + format check), mypy, and the import contracts (import-linter)
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## docs: build the documentation site into site/; any warning (a broken link or anchor, a page
## missing from the nav, an unknown generated table) fails the build. Not --quiet: it hides the
## warnings from --strict too, and the build passes. NO_MKDOCS_2_WARNING silences Material's
## end-of-life banner, which is not a warning of ours.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## docs-serve: preview the documentation at http://127.0.0.1:8001, rebuilt as you edit
docs-serve: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8001

## doc-tools: the doc tests (tests/docs) run the docs' shell blocks, which use curl and jq;
## CI installs them when missing, elsewhere a missing one stops here with the command to run
doc-tools:
	@command -v curl >/dev/null && command -v jq >/dev/null || \
	if [ "$$CI" = true ]; then apt-get update -qq && apt-get install -y -qq curl jq; \
	else echo "make test needs curl and jq: apt-get install -y curl jq" >&2; exit 1; fi

## browser: Debian's chromium for the browser tests (tests/browser), installed when missing.
## Playwright drives it through executable_path: its own browser download needs the internet.
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium for the browser tests (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	      || { echo "could not install chromium: the browser tests cannot run" >&2; exit 1; }; \
	  else \
	    echo "chromium is missing: run 'sudo apt-get install -y chromium' (the browser tests need it)" >&2; \
	    exit 1; \
	  fi; \
	fi

## test: lint, types, the docs build, the browser, then the whole suite on SQLite and PostgreSQL,
## in TEST_WORKERS processes (pytest-xdist). Each worker has its own throwaway PostgreSQL database
## and SQLite file; --dist loadscope keeps a module's tests (and its module fixtures: a browser, a
## running server) on one worker. TEST_WORKERS=0 runs the suite in this one process.
TEST_WORKERS ?= 2
test: lint docs doc-tools browser
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadscope

## fuzz: the property-based fuzz suite with thousands of examples per test (tests/fuzz)
fuzz: install
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest tests/fuzz

fmt: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## bench: see bench/README.md
bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache site
