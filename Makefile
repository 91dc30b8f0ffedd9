# shoal — the two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
# shoal and what it needs to run, without the test and lint tools: all the demo needs.
RUN_STAMP := $(VENV)/.installed-run

.PHONY: demo test lint typecheck install bench clean pg-binaries browser rabbit-server

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "shoal needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e .
	@# Bytecode now: with PYTHONDONTWRITEBYTECODE set, every start would compile shoal again.
	$(BIN)/python -m compileall -q src
	@touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# Start the bundled testweb site on loopback, fetch it with the live progress
# display into an SQLite file, print the summary, stop the site. Offline.
demo: $(RUN_STAMP)
	$(BIN)/shoal demo

lint: $(STAMP)
	$(BIN)/ruff check --no-cache src tests bench examples

typecheck: $(STAMP)
	$(BIN)/mypy

# The PostgreSQL tests need a server: SHOAL_TEST_PG_DSN, or the server binaries to start a
# throwaway one (installed from Debian's packages when missing and we may).
pg-binaries:
	@if [ -z "$$SHOAL_TEST_PG_DSN" ] && ! command -v initdb >/dev/null \
	    && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  echo "installing PostgreSQL server binaries for the store tests"; \
	  apt-get install -y -q postgresql >/dev/null || { apt-get update -q && apt-get install -y -q postgresql; }; \
	fi

# The dashboard's tests drive Debian's Chromium through Playwright (browser downloads are
# impossible here, so Playwright launches the system binary by its path).
browser:
	@if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then \
	  echo "installing Chromium for the dashboard tests"; \
	  apt-get install -y -q chromium >/dev/null || { apt-get update -q && apt-get install -y -q chromium; }; \
	fi

# The queue tests need a RabbitMQ: SHOAL_TEST_AMQP_URL, or rabbitmq-server to start a
# throwaway node (installed from Debian's packages when missing and we may).
rabbit-server:
	@if [ -z "$$SHOAL_TEST_AMQP_URL" ] && [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ] \
	    && ! command -v rabbitmq-server >/dev/null; then \
	  echo "installing rabbitmq-server for the queue tests"; \
	  apt-get install -y -q rabbitmq-server >/dev/null || { apt-get update -q && apt-get install -y -q rabbitmq-server; }; \
	fi

test: lint typecheck pg-binaries browser rabbit-server
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/fetch.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache shoal-demo.db*
