# pipebot — the two commands are `make demo` and `make test`; everything else supports them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck imports pytest services bench eval record-demo docs clean help \
	lock deploy-check

help:
	@echo "make demo         set up and chat with pipebot on the bundled demo environment"
	@echo "make test         set up, start what tests need, run lint, types, import contracts, tests"
	@echo "make bench        run the benchmarks and print their figures"
	@echo "make eval         run the agent evals (replay; live too when ANTHROPIC_API_KEY is set)"
	@echo "make record-demo  re-record the demo data from a real Airflow 3 + dbt build"
	@echo "make lock         update uv.lock after changing dependencies in pyproject.toml"
	@echo "make deploy-check only the deployment checks (lock, Dockerfile, compose, Kubernetes)"

# (Re)create the venv when pyproject.toml changes.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/pipebot demo

# PostgreSQL must be up for the store tests; start the machine's cluster if it is not.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || { \
	  echo "starting PostgreSQL"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start; \
	  for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; }
	@pg_isready -h 127.0.0.1 -p 5432

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy bot integrations handlers

imports: $(STAMP)
	$(BIN)/lint-imports

# pytest's exit code 5 means "no tests collected": a broken collection must not pass.
pytest: $(STAMP) services
	@$(BIN)/pytest; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; \
	  exit $$rc

# tests/deploy (part of pytest) checks the deployment files: uv.lock in step with pyproject.toml,
# hadolint and a replay of the Dockerfile's build into a fresh venv, compose and kustomize output
# validated against their schemas, and every variable they set is a pipebot setting.
test: lint typecheck imports pytest

# uv.lock is what the image and Heroku install; CI fails while it disagrees with pyproject.toml.
lock: $(STAMP)
	$(BIN)/uv lock

deploy-check: $(STAMP)
	$(BIN)/pytest -q tests/deploy

bench: $(STAMP) services
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# Agent evals: replay mode always; live against the real API too when ANTHROPIC_API_KEY is set.
eval: $(STAMP)
	$(BIN)/python -m tests.evals

record-demo: $(STAMP)
	$(BIN)/python -m tests.stack.record_demo

# Regenerate the settings reference and .env.example from bot/settings.py.
docs: $(STAMP)
	@sed -n '1,/^| Environment variable/p' docs/configuration.md | sed '$$d' > docs/.configuration.head
	@{ cat docs/.configuration.head; $(BIN)/pipebot config; } > docs/configuration.md
	@rm docs/.configuration.head
	@$(BIN)/pipebot config --format env > .env.example

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
