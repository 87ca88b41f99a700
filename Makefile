# The two commands a new user needs: `make run` and `make test`. Both set themselves up.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
VENDOR := src/usersync/web/static/vendor/.installed

.PHONY: install run demo test lint typecheck unit system-packages bench screenshots clean

# Byte-compiled as a regular (non-editable) install would be, also where the environment sets
# PYTHONDONTWRITEBYTECODE: every command then starts about 0.1 s sooner.
install: $(STAMP) $(VENDOR)
	@$(BIN)/python -m compileall -q src/usersync

$(STAMP): pyproject.toml
	@py=$$(scripts/ensure-python.sh) && [ -x $(BIN)/python ] || $$py -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

# htmx and Pico CSS for the web UI: from the npm registry, as pinned (with their integrity
# hashes) in package-lock.json; copied into the package's static/vendor/, never committed.
$(VENDOR): package.json package-lock.json scripts/vendor-assets.sh
	@scripts/vendor-assets.sh
	@touch $@

system-packages:
	@scripts/ensure-system-packages.sh

run: install
	$(BIN)/usersync serve

# A connection to a demo SFTP server with sample files, which `make run` serves.
demo: install
	$(BIN)/usersync demo

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

# Screenshots of each step of the web UI into docs/screenshots/ (the demo server, a
# throwaway database).
screenshots: install system-packages
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache node_modules src/usersync/web/static/vendor
