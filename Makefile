# One entry point for people and CI alike. `make test` is what .ci/run calls.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck pytest demo sim clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check orchestrator tests
	$(BIN)/ruff format --check orchestrator tests

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

# The README's first command: a sample batch against the embedded simulator's demo profile.
demo: $(STAMP)
	$(BIN)/orchestrator run jobs/welcome/manifest.csv --template jobs/welcome/welcome.pictai \
		--out runs/demo --simulate=demo

sim: $(STAMP)
	$(BIN)/orchestrator sim --profile demo

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
