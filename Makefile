# The two commands a newcomer needs: `make run` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test fuzz lint fmt bench clean

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

## test: lint, types, then the whole suite on SQLite and PostgreSQL
test: lint
	$(BIN)/pytest

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
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
