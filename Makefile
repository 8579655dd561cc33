# Quick start: `make demo` runs the ws page's examples against a local server, then an agent;
# `make test` runs lint, types and the whole suite, `make test-fast` all but the slow tests.
# They install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
NODE_DIR := .cache/node
# Debian's peers for the tests: chromium renders the agent's pages, Prometheus (and promtool)
# check deploy/ against real agents, Alertmanager receives the agent's alerts.
PEERS := /usr/bin/chromium /usr/bin/prometheus /usr/bin/prometheus-alertmanager
# jemalloc, the workers' allocator (docs/architecture.md), and mimalloc, compared with it
# by `make bench`: where Debian puts them.
MULTIARCH := $(shell $(PYTHON) -c "import sysconfig; print(sysconfig.get_config_var('MULTIARCH'))")
JEMALLOC := /usr/lib/$(MULTIARCH)/libjemalloc.so.2
MIMALLOC := /usr/lib/$(MULTIARCH)/libmimalloc.so.2
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test test-fast bench conformance clean

$(VENV)/.demo: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[serve,fast,agent]'
	touch $@

$(VENV)/.dev: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,serve,fast,agent]'
	touch $@ $(VENV)/.demo

# The Node.js ws package: a WebSocket peer from another ecosystem for the tests.
$(NODE_DIR)/node_modules/ws/package.json:
	@if command -v npm >/dev/null 2>&1; then \
		npm install --silent --no-audit --no-fund --prefix $(NODE_DIR) ws@8; \
	else \
		echo "npm not found: tests against the Node.js ws server will be skipped"; \
	fi

$(VENV)/.bench: $(VENV)/.dev
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,serve,fast,bench]'
	touch $@

$(NODE_DIR)/node_modules/wscat/package.json: $(NODE_DIR)/node_modules/ws/package.json
	@if command -v npm >/dev/null 2>&1; then \
		npm install --silent --no-audit --no-fund --prefix $(NODE_DIR) ws@8 wscat@6; \
	fi

demo: $(VENV)/.demo $(JEMALLOC)
	$(BIN)/python examples/demo.py

$(PEERS) &:
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium prometheus prometheus-alertmanager

$(JEMALLOC):
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y libjemalloc2

$(MIMALLOC):
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y libmimalloc2.0

test: $(VENV)/.dev $(NODE_DIR)/node_modules/ws/package.json $(PEERS) $(JEMALLOC)
	$(BIN)/ruff format --check src tests examples bench
	$(BIN)/ruff check src tests examples bench
	$(BIN)/mypy
	$(BIN)/pytest --cov --cov-report=term

# The inner loop: lint, types and every test not marked slow (no browser, Autobahn,
# agent or worker processes, Hypothesis), in under a minute.
test-fast: $(VENV)/.dev
	$(BIN)/ruff format --check src tests examples bench
	$(BIN)/ruff check src tests examples bench
	$(BIN)/mypy
	$(BIN)/pytest -q -m "not slow"

# Not part of the test suite: prints ratios measured side by side (docs/performance.md).
bench: $(VENV)/.bench $(NODE_DIR)/node_modules/wscat/package.json $(JEMALLOC) $(MIMALLOC)
	$(BIN)/python bench/bench.py
	$(BIN)/python bench/http_clients.py
	$(BIN)/python bench/store_calls.py

# Autobahn sections make test leaves out (9: performance, 12-13: compression) with
# kosoku, then the whole suite with the original autobahntestsuite when a Python 2.7
# is present (docs/conformance.md).
conformance: $(VENV)/.dev
	$(BIN)/python tests/autobahn/fuzzing.py '9.*' '12.*' '13.*'
	$(BIN)/python tests/autobahn/original.py

clean:
	rm -rf $(VENV) .cache .coverage .mypy_cache .ruff_cache .pytest_cache
