# Set-up shared by the workbook's Makefile and the learners' copy's (make student-copy ships this file):
# the Python environment with the workbook's package, and the system packages it needs.
PYTHON_BOOT ?= $(shell command -v python3.11 || command -v python3)
VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed

# nbgrader shells out to `alembic`, Jupyter to its kernels: the environment's bin comes first.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PYTHONWARNINGS := ignore::DeprecationWarning

.PHONY: help install system

help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: system $(STAMP) ## Create .venv from requirements.txt (only when missing or the lock changed)

# Lab 05 monitoring: Prometheus (with promtool), Alertmanager and the Pushgateway from the OS packages, and the
# JDK's javac (the embedded OpenSearch compiles its small launcher once: helpers/platform/opensearch_node.py). The
# workbook starts its own copies on 127.0.0.1 (helpers/platform/monitoring_services.py), never the packages'
# system services: while apt-get installs them a policy-rc.d forbids starting services, and they are
# disabled afterwards (a systemd machine would otherwise run Prometheus on every interface, port 9090).
POLICY_RC ?= /usr/sbin/policy-rc.d
MONITORING_CHECK = command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null || missing="$$missing prometheus-alertmanager"; \
	command -v prometheus-pushgateway >/dev/null || command -v pushgateway >/dev/null || missing="$$missing prometheus-pushgateway"; \
	command -v javac >/dev/null || missing="$$missing openjdk-17-jdk-headless";
NO_SERVICE_START_BEGIN = ours=""; if [ ! -e $(POLICY_RC) ]; then printf '\043!/bin/sh\nexit 101\n' > $(POLICY_RC); chmod +x $(POLICY_RC); ours=1; fi;
NO_SERVICE_START_END = [ -z "$$ours" ] || rm -f $(POLICY_RC); \
	if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then \
	  systemctl disable --now prometheus prometheus-alertmanager prometheus-pushgateway >/dev/null 2>&1 || true; fi;

# Java 17+ (Kafka 4, Spark 4) and Maven (fetches the jars once): installed with apt-get when run as root
# on Debian/Ubuntu (as CI is); otherwise the exact install line, and a stop.
system: ## Check the system packages (Java 17+, Maven, Prometheus & co.); install them with apt-get when root
	@missing=""; \
	java -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])' || missing="$$missing openjdk-17-jre-headless"; \
	command -v mvn >/dev/null || missing="$$missing maven"; \
	$(MONITORING_CHECK) \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing system packages:$$missing"; \
	    $(NO_SERVICE_START_BEGIN) \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	    rc=$$?; $(NO_SERVICE_START_END) [ $$rc = 0 ] || exit $$rc; \
	  else \
	    echo "Missing system packages:$$missing. Install them, then run make again:" >&2; \
	    echo "  Debian/Ubuntu: sudo apt-get install$$missing make python3-venv" >&2; \
	    echo "  macOS:         brew install openjdk@17 maven python@3.11 prometheus alertmanager pushgateway" >&2; \
	    exit 1; \
	  fi; \
	fi

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || { echo "Creating $(VENV) with $(PYTHON_BOOT)"; $(PYTHON_BOOT) -m venv $(VENV); }
	@$(PY) -c 'import sys; assert sys.version_info[:2] >= (3, 10), "Python 3.10+ needed, found " + sys.version' 
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --progress-bar off -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $@
