# Every target bootstraps .venv when it is missing or pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1

.PHONY: setup run demo serve ui test lint format bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch==2.13.0 is the CPU wheel; the constraints keep every other package at a tested version.
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install everything

run: $(STAMP) ## one ingest cycle over feeds.yaml into data/monitor.duckdb
	$(BIN)/monitor run

demo: $(STAMP) ## the pipeline against the bundled sample site on 127.0.0.1
	$(BIN)/monitor demo

serve: $(STAMP) ## every deployment on its schedule in one process (ingest 15 min, deliver 1 min, digest, maintenance)
	$(BIN)/monitor serve $(SERVE_ARGS)

ui: $(STAMP) ## the review page on http://127.0.0.1:8780
	$(BIN)/monitor ui $(UI_ARGS)

test: $(STAMP) ## the test suite (pytest's exit 5, "no tests collected", counts as a failure)
	$(BIN)/pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$status

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
