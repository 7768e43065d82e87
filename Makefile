# Everything a fresh machine needs: `make test` and `make run` create .venv and install.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck layers pytest run demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check rollout tests bench
	$(BIN)/ruff format --check rollout tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck layers pytest

run: $(STAMP)
	$(BIN)/rollout serve

demo: $(STAMP)
	$(BIN)/rollout demo
	$(BIN)/rollout demo --inject-errors 0.2

bench: $(STAMP)
	$(BIN)/python bench/eval.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
