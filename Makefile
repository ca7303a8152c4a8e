# Module 05 workbook: every target creates what it needs on first use and is safe to run again.
#   make lab    - the main job: environment, services, student notebooks, JupyterLab
#   make test   - the whole test suite against the live embedded services (.ci/run calls this)
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

# nbgrader shells out to `alembic`, Jupyter to its kernels: the environment's bin comes first.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PYTHONPATH := $(CURDIR)
export PYTHONWARNINGS := ignore::DeprecationWarning

.PHONY: help install lab test services airflow-ui stop status doctor release grade bench data fixtures clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## Create .venv from requirements.txt (only when missing or the lock changed)

$(STAMP): requirements.txt
	@test -x $(PY) || { echo "Creating $(VENV) with $(PYTHON_BOOT)"; $(PYTHON_BOOT) -m venv $(VENV); }
	@$(PY) -c 'import sys; assert sys.version_info[:2] >= (3, 10), "Python 3.10+ needed, found " + sys.version' 
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --progress-bar off -r requirements.txt
	@touch $@

lab: install services release ## Start everything and open JupyterLab on the student notebooks
	$(PY) -m helpers.lab --port $(LAB_PORT)

test: install ## Run the whole test suite against the live embedded services
	$(PY) -m helpers.services start
	$(PY) -m pytest tests $(PYTEST_ARGS)

services: install ## Start the embedded services (Kafka broker; Spark connector; Airflow DB)
	$(PY) -m helpers.services start

airflow-ui: install ## Optional: Airflow's web UI (airflow standalone, capped for 2 cores) on :8080
	$(PY) -m helpers.services start airflow-ui

stop: ## Stop the embedded services
	@if [ -x $(PY) ]; then $(PY) -m helpers.services stop; fi

status: install ## Show the embedded services
	@$(PY) -m helpers.services status

doctor: install ## Check Python, Java, memory, ports and each service, with hints
	@$(PY) -m helpers.doctor

release: install ## Write the student versions of every lab into .state/course/release
	$(PY) -m autograder.release

grade: install ## Autograde every submission in SUBMISSIONS=folder; grades CSV + feedback
	$(PY) -m autograder.grade $(SUBMISSIONS) --out $(GRADES_OUT)

bench: install services ## Print benchmark figures (start-up, generation, DAG run, ...)
	$(PY) -m helpers.bench

data: install ## Generate the default 1M-row dataset into data/generated (cached)
	$(PY) -m helpers.data --rows 1000000 --seed 42

fixtures: install ## Regenerate the small committed fixtures in data/fixtures
	$(PY) -m helpers.data --fixtures

clean: stop ## Remove generated state (keeps .venv and the jar cache)
	rm -rf .state/kafka .state/airflow .state/course .state/spark data/generated
