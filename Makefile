# Module 05 workbook: every target creates what it needs on first use and is safe to run again.
#   make lab    - the main job: environment, services, student notebooks, JupyterLab
#   make test   - the whole test suite against the live embedded services (.ci/run calls this)
#   make check  - the fast tier: everything but the notebook executions
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOT ?= $(shell command -v python3.11 || command -v python3)
VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
SUBMISSIONS ?= submissions
GRADES_OUT  ?= .state/course/grades
PYTEST_ARGS ?=
LAB_PORT    ?= 8888
JOBS        ?= 2
# The suite runs on JOBS pytest-xdist workers; loadscope keeps a test class (one lab's grading) or a
# module on one worker. (loadgroup would be finer, but with pytest 9.2 it silently stops grouping.)
PYTEST_XDIST = -n $(JOBS) --dist loadscope

# nbgrader shells out to `alembic`, Jupyter to its kernels: the environment's bin comes first.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PYTHONWARNINGS := ignore::DeprecationWarning

.PHONY: help install lab test check services airflow-ui stop status doctor release grade bench data fixtures clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## Create .venv from requirements.txt (only when missing or the lock changed)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || { echo "Creating $(VENV) with $(PYTHON_BOOT)"; $(PYTHON_BOOT) -m venv $(VENV); }
	@$(PY) -c 'import sys; assert sys.version_info[:2] >= (3, 10), "Python 3.10+ needed, found " + sys.version' 
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --progress-bar off -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $@

lab: install services release ## Start everything and open JupyterLab on the student notebooks
	$(PY) -m helpers.platform.jupyter --port $(LAB_PORT)

test: install ## Run the whole test suite against live services, in its own state folder (.test-state)
	$(PY) -m pytest tests $(PYTEST_XDIST) $(PYTEST_ARGS)

check: install ## The fast tier: every test but the notebook executions (for iteration)
	$(PY) -m pytest tests -m "not notebook" $(PYTEST_XDIST) $(PYTEST_ARGS)

services: install ## Start the embedded services (Kafka broker; Spark connector; Airflow DB)
	$(PY) -m helpers.platform.services start

airflow-ui: install ## Optional: Airflow's web UI (airflow standalone, capped for 2 cores) on :8080
	$(PY) -m helpers.platform.services start airflow-ui

stop: ## Stop the embedded services
	@if [ -x $(PY) ]; then $(PY) -m helpers.platform.services stop; fi

status: install ## Show the embedded services
	@$(PY) -m helpers.platform.services status

doctor: install ## Check Python, Java, memory, ports and each service, with hints
	@$(PY) -m helpers.platform.doctor

release: install ## Write the student versions of every lab into .state/course/release
	$(PY) -m autograder.release

# JOBS=N given to make grades N submissions at once; without it, the grader uses the core count.
grade: install ## Autograde every submission in SUBMISSIONS=folder [JOBS=N at once]; grades CSV + feedback
	$(PY) -m autograder.grade $(SUBMISSIONS) --out $(GRADES_OUT) $(if $(filter-out file,$(origin JOBS)),--jobs $(JOBS))

bench: install services ## Print benchmark figures (start-up, generation, DAG run, ...)
	$(PY) -m benchmarks

data: install ## Generate the default 1M-row dataset into data/generated (cached)
	$(PY) -m helpers.data --rows 1000000 --seed 42

fixtures: install ## Regenerate the small committed fixtures in data/fixtures
	$(PY) -m helpers.data --fixtures

clean: stop ## Remove generated state (keeps .venv and the jar cache)
	rm -rf .state/kafka .state/airflow .state/course .state/spark data/generated .test-state
