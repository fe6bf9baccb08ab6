# One command per job; each creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help install test lint typecheck unit demo lab bench clean

help:
	@echo "make lab    open the notebooks in JupyterLab (simulated network)"
	@echo "make test   lint, type-check and run every test"
	@echo "make demo   run a punch on loopback and print the trace"
	@echo "make bench  run the benchmarks"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check punchlab tests bench
	$(BIN)/ruff format --check punchlab tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

demo: $(STAMP)
	$(BIN)/punchlab demo

lab: demo

bench: $(STAMP)
	$(BIN)/python bench/connect_time.py
	$(BIN)/python bench/sim_scale.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
