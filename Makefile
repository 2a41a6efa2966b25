# Two commands on a fresh machine: `make demo` and `make test`.
# Each target installs what it needs by itself (virtual environment, pinned packages,
# npm packages for the local Ethereum node) and is safe to run again.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
WORKSPACE ?= demo-workspace
JOBS ?= 2

.PHONY: all demo test bench clean setup chromium java

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,spark]'
	touch $@

$(NPM_STAMP): package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

# Browser tests drive Debian's chromium (never a browser download); install it when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@command -v chromium >/dev/null 2>&1 || ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium)

# The Spark extraction (pyspark) needs a Java runtime: Debian's, installed when missing.
java:
	@command -v java >/dev/null 2>&1 || ($(SUDO) apt-get update && $(SUDO) apt-get install -y default-jre-headless)

setup: $(STAMP) $(NPM_STAMP) chromium java

demo: $(STAMP)
	$(PY) -m heisttrace.demo --workspace $(WORKSPACE)

test: $(STAMP) $(NPM_STAMP) chromium java
	PATH="$(CURDIR)/node_modules/.bin:$$PATH" $(PY) -m pytest -n $(JOBS) -q

bench: $(STAMP)
	$(PY) benchmarks/bench_ingest.py --rows 5000000
	$(PY) benchmarks/bench_trace.py --flows 10000000 --policy haircut
	$(PY) benchmarks/bench_trace.py --flows 10000000 --policy fifo

clean:
	rm -rf $(VENV) node_modules $(WORKSPACE) .pytest_cache
