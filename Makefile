# The two commands a new user needs: `make run` and `make test`. Both set themselves up.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck unit system-packages bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@py=$$(scripts/ensure-python.sh) && [ -x $(BIN)/python ] || $$py -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

system-packages:
	@scripts/ensure-system-packages.sh

run: install
	$(BIN)/usersync serve

lint: install
	$(BIN)/ruff check
	$(BIN)/ruff format --check

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest tests/unit

test: install system-packages lint typecheck
	$(BIN)/pytest

bench: install system-packages
	$(BIN)/python bench/import_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
