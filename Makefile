# One entry per task. `make help` lists them.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install browser tools run test lint format typecheck up down clean

help:  ## List the tasks
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)  ## Create .venv and install streamlearn with its dev tools

run: $(STAMP)  ## Local Kafka + a node + the bundled demo streams (Ctrl-C stops)
	$(BIN)/streamlearn demo

browser:  ## Debian's Chromium for the dashboard test (installed with apt-get if missing)
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium for the dashboard test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

tools:  ## Debian's Prometheus and Alertmanager for the alerting tests (apt-get if missing)
	@command -v promtool >/dev/null && command -v prometheus >/dev/null \
	  && command -v prometheus-alertmanager >/dev/null || { \
	  echo "installing Debian's prometheus and prometheus-alertmanager for the alerting tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends prometheus prometheus-alertmanager >/dev/null; }

test: $(STAMP) browser tools  ## The whole test suite (starts its own Kafka brokers)
	$(BIN)/pytest -n 2 --dist loadfile

lint: $(STAMP)  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)  ## ruff format and autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)  ## mypy, strict
	$(BIN)/mypy

up:  ## docker compose: Apache Kafka, a node, Prometheus, Alertmanager, Grafana
	docker compose up --build

down:  ## Stop the compose stack
	docker compose down

clean:  ## Stop the local broker and remove local state
	-$(BIN)/streamlearn kafka stop
	rm -rf .state
