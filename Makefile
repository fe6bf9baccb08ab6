# One command per job; each creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: help lab test fast lint typecheck unit notebooks assignments demo bench clean

help:
	@echo "make lab        open the notebooks in JupyterLab (simulated network, no setup)"
	@echo "make test       lint, type-check, run every test and check every notebook"
	@echo "make fast       the tests without browser, real-NAT lab, slow ones and notebooks"
	@echo "make demo       punch through two simulated NATs and draw the diagram"
	@echo "make notebooks  run the notebooks from their notebooks/NN-name.py sources, store outputs"
	@echo "make assignments  write the nbgrader course, assignments/, from the chapters"
	@echo "make bench      run the benchmarks"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.lab: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[lab]'
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.lab

# JupyterLab refuses to run as root unless told; containers and CI machines are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(VENV)/.lab
	$(BIN)/jupyter lab $(ROOT_FLAG) notebooks/01-what-a-nat-does.ipynb

lint: $(VENV)/.test
	$(BIN)/ruff check punchlab tests bench notebooks scripts setup.py
	$(BIN)/ruff format --check punchlab tests bench notebooks scripts setup.py

typecheck: $(VENV)/.test
	$(BIN)/mypy
	$(BIN)/mypy scripts/execute_notebooks.py
	$(BIN)/mypy scripts/make_assignments.py

# The unit, integration, image, browser tests and the notebooks (nbval, strict).
unit: $(VENV)/.test
	$(BIN)/pytest --nbval --nbval-current-env tests notebooks

test: lint typecheck unit

# While working: everything but the browser, the real-NAT lab and the slow
# tests (under a minute on two cores).
fast: $(VENV)/.test
	$(BIN)/pytest -q -m "not browser and not netlab and not slow" tests

# Each notebook's source is its jupytext-paired notebooks/NN-name.py: give the
# .ipynb its cells, run them, store the outputs (tests/test_packaging.py fails
# when a notebook and its source differ).
notebooks: $(VENV)/.test
	$(BIN)/python scripts/execute_notebooks.py

# The nbgrader course: assignments/source/<chapter>/ from the chapters' exercise-tagged
# cells and punchlab.exercises (tests/test_assignments.py fails when they differ).
assignments: $(VENV)/.test
	$(BIN)/python scripts/make_assignments.py

demo: $(VENV)/.lab
	$(BIN)/punchlab demo

# Each benchmark prints its figures and a ratio to a baseline measured in the
# same run, and writes them to bench/results/ (the README summarises them).
bench: $(VENV)/.test
	mkdir -p bench/results
	$(BIN)/python bench/connect_time.py --json bench/results/connect_time.json
	$(BIN)/python bench/sim_scale.py --json bench/results/sim_scale.json
	$(BIN)/python bench/server_bench.py --json bench/results/server.json
	$(BIN)/python bench/notebooks_time.py --json bench/results/notebooks.json
	$(BIN)/python bench/netlab_connect.py --json bench/results/netlab_connect.json
	$(BIN)/python bench/routes.py --json bench/results/routes.json
	$(BIN)/python bench/birthday_curve.py --json bench/results/birthday_curve.json
	$(BIN)/python bench/netlab_birthday.py --json bench/results/netlab_birthday.json
	$(BIN)/python bench/reliable_chat.py --json bench/results/reliable_chat.json
	$(BIN)/python -c "import json, os, platform; json.dump({'machine': platform.machine(), 'cpus': os.cpu_count(), 'python': platform.python_version(), 'kernel': platform.release()}, open('bench/results/machine.json', 'w'), indent=2)"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis artifacts
