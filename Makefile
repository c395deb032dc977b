# carebridge — the same commands locally and in CI.
# `make demo` and `make test` create the virtual environment on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv demo test lint format bench db-upgrade examples clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/carebridge demo

test: venv
	$(BIN)/pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: venv
	@set -e; found=0; for b in bench/bench_*.py; do \
	  [ -e "$$b" ] || continue; found=1; echo "== $$b"; $(BIN)/python "$$b" $(BENCH_ARGS); done; \
	  [ $$found = 1 ] || echo "no benchmarks yet (bench/bench_*.py)"

db-upgrade: venv
	$(BIN)/carebridge db upgrade

examples: venv
	$(BIN)/carebridge examples generate --persons 50 --seed 2026 --out examples/sample

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
