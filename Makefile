# Moonwatch: `make up` runs it, `make test` tests it. `make` alone lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STACK := $(BIN)/python -m moonwatch.stack

.PHONY: help install lock system-packages up down status env psql test test-fast lint format bench bench-growth chaos docs-screenshot dbt-build clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# requirements-dev.txt pins everything (runtime, local broker, tools), constrained by the runtime
# lock; the project itself goes in editable, without touching those pins.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the pinned requirements and the moonwatch package

lock: $(STAMP) ## re-pin requirements.txt and requirements-dev.txt from pyproject.toml's dependencies
	$(BIN)/uv pip compile --quiet pyproject.toml --python-version 3.11 -o requirements.txt
	$(BIN)/uv pip compile --quiet pyproject.toml --python-version 3.11 --extra local --extra dev \
		-c requirements.txt -o requirements-dev.txt

system-packages: ## install (or say how to install) the system packages the tests need
	@bash scripts/system-packages.sh

up: $(STAMP) ## start the whole local stack (Postgres, broker, simulator, Airflow, dashboard)
	@$(STACK) up

down: ## stop everything `make up` started (waits for the loader to drain the broker first)
	@$(STACK) down

status: ## say what runs and whether it is healthy
	@$(STACK) status

env: ## print the live settings as export lines: eval "$$(make -s env)"
	@$(STACK) env

psql: $(STAMP) ## psql on the warehouse; the password stays off the command line (PSQL_ARGS="-c ...")
	@$(STACK) psql $(PSQL_ARGS)

test: $(STAMP) system-packages ## run the test suite on throw-away services
	$(BIN)/python -m pytest

test-fast: $(STAMP) ## the unit tests only (no services)
	$(BIN)/python -m pytest -m "not integration"

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## ruff format and autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

chaos: $(STAMP) ## attack a running stack and run the long property test (long); writes docs/RELIABILITY.md
	$(BIN)/python -m pytest -m chaos tests/chaos tests/dbt/test_property_truth.py $(CHAOS_ARGS)

docs-screenshot: $(STAMP) ## regenerate docs/dashboard.png from realistic simulated marts
	$(BIN)/python -m pytest -m docs tests/dashboard/test_docs_screenshot.py

bench: $(STAMP) ## run the benchmarks; numbers go to bench/RESULTS.md
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-growth: $(STAMP) ## bounded growth in a private stack (about 30 min); numbers go to bench/GROWTH.md
	$(BIN)/python -m bench --only growth --output bench/GROWTH.md $(BENCH_ARGS)

dbt-build: $(STAMP) ## dbt build against the running stack's warehouse
	@eval "$$($(STACK) env)" && $(BIN)/python -m moonwatch.dbt build

clean: down ## stop the stack and delete its state folder (.moonwatch/)
	rm -rf .moonwatch
