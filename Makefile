# One entry point for people and CI alike. `make test` is what .ci/run calls.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: soak soak-pg fuzz test lint typecheck pytest chromium postgresql demo demo-storyboard demo-video-edit demo-mixed shared-demo sim clean bench bench-smoke bench-pg docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# (The uninstall: until 0.1.0 the distribution was named `orchestrator`; a .venv made then holds it.)
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip uninstall --quiet --yes orchestrator 2>/dev/null || true
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check orchestrator tests
	$(BIN)/ruff format --check orchestrator tests
	$(BIN)/lint-imports
	$(BIN)/python scripts/cli_docs --check

# docs/cli.md is generated from the CLI's --help; rerun after changing a command or an option.
docs: $(STAMP)
	$(BIN)/python scripts/cli_docs

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) chromium postgresql
	$(BIN)/pytest

# Debian's Chromium for the report's browser test, installed when missing (never a downloaded one).
chromium:
	@scripts/ensure-chromium

# Debian's PostgreSQL server for the database ledger's tests (they start their own from it).
postgresql:
	@scripts/ensure-postgresql

test: lint typecheck pytest

# The README's first command: a sample batch against the embedded simulator's demo profile.
demo: $(STAMP)
	$(BIN)/orchestrator run jobs/welcome/manifest.csv --template jobs/welcome/welcome.pictai \
		--out runs/demo --simulate=demo

# The other flows' samples, and a manifest mixing all three.
demo-storyboard: $(STAMP)
	$(BIN)/orchestrator run jobs/storyboard/manifest.csv --flow storyboard --out runs/storyboard --simulate=demo

demo-video-edit: $(STAMP)
	$(BIN)/orchestrator run jobs/video-edit/manifest.csv --flow video-edit --out runs/video-edit --simulate=demo

demo-mixed: $(STAMP)
	$(BIN)/orchestrator run jobs/mixed/manifest.csv --allow-path jobs --out runs/mixed --simulate=demo

# A batch shared by two workers through a throwaway PostgreSQL (`orchestrator dev-postgres`),
# in one command: docs/shared-ledger.md#try-it.
shared-demo: $(STAMP) postgresql
	$(BIN)/python scripts/shared-demo

sim: $(STAMP)
	$(BIN)/orchestrator sim --profile demo

# Kill the real CLI with SIGKILL KILLS times at random moments, rerun, check the invariants.
KILLS ?= 200
SOAK_FLAGS ?=
soak: $(STAMP)
	$(BIN)/python scripts/soak --kills $(KILLS) $(SOAK_FLAGS)

# The same for the shared ledger: three workers on one batch in a throwaway PostgreSQL, one
# SIGKILLed and restarted at random moments, KILLS times (docs/shared-ledger.md). Not in `make test`.
soak-pg: $(STAMP) postgresql
	$(BIN)/python scripts/soak --ledger pg --workers 3 --kills $(KILLS) $(SOAK_FLAGS)

# Property-based fuzzing of every reader, with many more examples than `make test` runs.
FUZZ_EXAMPLES ?= 5000
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -m fuzz -q

# Benchmarks against a standalone simulator (docs/performance.md); not run by CI.
bench: $(STAMP)
	$(BIN)/python -m benchmarks

bench-smoke: $(STAMP)
	$(BIN)/python -m benchmarks --smoke

# Workers sharing a batch through a throwaway PostgreSQL (docs/shared-ledger.md, docs/performance.md).
bench-pg: $(STAMP) postgresql
	$(BIN)/python -m benchmarks.pg_scale --json benchmarks/results/pg_scale.json

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
