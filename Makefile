# One entry point for humans and CI. Every target bootstraps .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv proto lint format typecheck test unit demo bench bench-policy bench-audit clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

proto: $(STAMP)
	$(BIN)/python -m gateway.tools.protogen .

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

demo: $(STAMP)
	$(BIN)/fedgate demo --state-dir .fedgate-demo

bench: $(STAMP)
	$(BIN)/python -m bench
	$(BIN)/python -m bench.policy
	$(BIN)/python -m bench.audit
	$(BIN)/python -m bench.context

bench-policy: $(STAMP)
	$(BIN)/python -m bench.policy

bench-audit: $(STAMP)
	$(BIN)/python -m bench.audit

clean:
	rm -rf $(VENV) .fedgate-demo .pytest_cache .mypy_cache .ruff_cache build *.egg-info
