# Module 05 workbook: every target creates what it needs on first use and is safe to run again.
#   make lab    - the main job: environment, services, student notebooks, JupyterLab
#   make test   - the whole test suite against the live embedded services (.ci/run calls this)
#   make check  - the fast tier: everything but the notebook executions
SHELL := /bin/bash
.DEFAULT_GOAL := help

SUBMISSIONS ?= submissions
GRADES_OUT  ?= .state/course/grades
PYTEST_ARGS ?=
LAB_PORT    ?= 8888
FORMGRADER_PORT ?= 8890
JOBS        ?= 2
# The suite runs on JOBS pytest-xdist workers; loadscope keeps a test class (one lab's grading) or a
# module on one worker. (loadgroup would be finer, but with pytest 9.2 it silently stops grouping.)
PYTEST_XDIST = -n $(JOBS) --dist loadscope

include setup.mk

.PHONY: sandbox browser lab test check student-copy services airflow-ui stop status doctor release grade formgrader grades bench data fixtures clean

lab: install services release ## Start everything and open JupyterLab on the student notebooks
	$(PY) -m helpers.platform.jupyter --port $(LAB_PORT)

# The browser tests (tests/test_browser.py) drive Debian's chromium; as root (CI) it is installed here.
CHROMIUM_INSTALL := apt-get update && apt-get install -y chromium

browser: ## Headless Chromium for the browser tests (Debian's chromium; installed with apt-get when root)
	@if command -v chromium >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing chromium for the browser tests: $(CHROMIUM_INSTALL)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "chromium is missing, so the browser tests will be skipped; install it with: sudo $(CHROMIUM_INSTALL)"; fi

# The grading kernels run in a bubblewrap sandbox (autograder/sandbox.py); as root (CI) it is installed here.
BWRAP_INSTALL := apt-get update && apt-get install -y bubblewrap

sandbox: ## bubblewrap for the grading sandbox (installed with apt-get when root; else grading warns it is off)
	@if command -v bwrap >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing bubblewrap for the grading sandbox: $(BWRAP_INSTALL)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; \
	else echo "WARNING: bubblewrap is missing, so submissions are graded WITHOUT isolation (and the hostile suite is skipped); install it with: sudo $(BWRAP_INSTALL)"; fi

test: install browser sandbox ## Run the whole test suite against live services, in its own state folder (.test-state)
	$(PY) -m pytest tests $(PYTEST_XDIST) $(PYTEST_ARGS)

check: install ## The fast tier: every test but the notebook executions (for iteration)
	$(PY) -m pytest tests -m "not notebook and not slow" $(PYTEST_XDIST) $(PYTEST_ARGS)

services: install ## Start the embedded services (Kafka broker; Spark connector; Airflow DB)
	$(PY) -m helpers.platform.services start

airflow-ui: install ## Optional: Airflow's web UI (airflow standalone, capped for 2 cores) on :8080
	$(PY) -m helpers.platform.services start airflow-ui

# Lab 05 part 3 only (never part of `make services`/`make lab`: Labs 00-04 don't pay for it): Prometheus,
# Alertmanager, the Pushgateway, the alert receiver and OpenSearch, embedded on 127.0.0.1. `make stop` stops them.
.PHONY: monitoring
monitoring: install ## Lab 05: start Prometheus, Alertmanager, Pushgateway, the alert receiver, OpenSearch
	$(PY) -m helpers.platform.services start monitoring

stop: ## Stop the embedded services
	@if [ -x $(PY) ]; then $(PY) -m helpers.platform.services stop; fi

status: install ## Show the embedded services
	@$(PY) -m helpers.platform.services status

doctor: install ## Check Python, Java, memory, ports and each service, with hints
	@$(PY) -m helpers.platform.doctor

release: install ## Write the student versions of every lab into .state/course/release
	$(PY) -m autograder.release

# JOBS=N given to make grades N submissions at once; without it, the grader uses the core count.
grade: install sandbox ## Autograde every submission in SUBMISSIONS=folder [JOBS=N at once]; grades CSV + feedback
	$(PY) -m autograder.grade $(SUBMISSIONS) --out $(GRADES_OUT) $(if $(filter-out file,$(origin JOBS)),--jobs $(JOBS))

student-copy: install ## Build the learners' copy of the workbook into DEST=folder (no solution, test or grader)
	@test -n "$(DEST)" || { echo "usage: make student-copy DEST=../module05-student" >&2; exit 2; }
	$(PY) -m autograder.student_copy "$(DEST)"

formgrader: install ## Instructors: nbgrader's formgrader on the course, to grade the manual answers
	$(PY) -m autograder.formgrader --port $(FORMGRADER_PORT)

grades: install ## Instructors: add the formgrader's manual scores to grades.csv; regenerate feedback
	$(PY) -m autograder.grades --out $(GRADES_OUT) --feedback

# Lab 05: the reference capstone, headless against the live services (the events API is started as needed).
.PHONY: capstone
capstone: install services ## Lab 05 reference system end to end; report + <state>/capstone/summary.json
	$(PY) -m helpers.capstone $(CAPSTONE_ARGS)

bench: install services ## Print benchmark figures (start-up, generation, DAG run, ...)
	$(PY) -m benchmarks

data: install ## Generate the default 1M-row dataset into data/generated (cached)
	$(PY) -m helpers.data --rows 1000000 --seed 42

fixtures: install ## Regenerate the small committed fixtures in data/fixtures
	$(PY) -m helpers.data --fixtures

clean: stop ## Remove services' state, generated data and the suite's state (never .state/course: your work, grades)
	rm -rf .state/kafka .state/airflow .state/spark data/generated .test-state
