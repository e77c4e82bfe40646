# The trading box maintenance suite. `make demo` then `make test` on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export LAB_DIR ?= $(CURDIR)/.lab
LAB_CONFIG := $(LAB_DIR)/maintenance.toml
# The operator's configuration file; `make daily CONFIG=/etc/trading-maintenance/maintenance.toml`.
CONFIG ?= $(MAINTENANCE_CONFIG)
DEMO_FAULTS := service-down:trading-dashboard files-past-retention error-rate-high new-error-code
PYTEST_ARGS ?=

.PHONY: setup system-deps demo test lab-up lab-down lab-status fault fault-clear \
        daily weekly monthly quarterly emergency bench clean \
        install-schedule uninstall-schedule clear-budget

setup: $(VENV)/.installed system-deps

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

# The lab needs a PostgreSQL server; install it when it is missing and we may (root).
system-deps:
	@if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing PostgreSQL for the lab"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else \
	    echo "PostgreSQL server binaries are missing: install the 'postgresql' package (as root)"; exit 1; \
	  fi; \
	fi

lab-up: setup
	$(PY) -m lab up

lab-down:
	@if [ -x $(PY) ]; then $(PY) -m lab down; fi

lab-status: setup
	$(PY) -m lab status

# make fault NAME=service-down:trading-agent ; make fault-clear (all) or make fault-clear NAME=...
fault: setup
	$(PY) -m lab fault inject $(NAME)

fault-clear: setup
	$(PY) -m lab fault clear $(if $(NAME),$(NAME),--all)

demo: lab-up
	@$(PY) -m lab fault clear --all >/dev/null
	@for fault in $(DEMO_FAULTS); do $(PY) -m lab fault inject $$fault; done
	@echo
	@echo "Running the daily cadence against the lab (faults injected: $(DEMO_FAULTS))"
	@$(PY) -m pytest -m daily --maintenance-config=$(LAB_CONFIG) -q $(PYTEST_ARGS); status=$$?; \
	  echo; echo "daily run exit status $$status (see README: exit statuses)"; \
	  echo "the lab keeps running: make lab-down to stop it"

test: setup
	$(PY) -m pytest -c tests/pytest.ini $(PYTEST_ARGS) tests

daily weekly monthly quarterly emergency: setup
	$(PY) -m pytest -m $@ $(if $(CONFIG),--maintenance-config=$(CONFIG)) $(PYTEST_ARGS)

# The guide's schedule as /etc/cron.d/trading-maintenance (CRON_FILE=... to put it elsewhere).
CRON_FILE ?= /etc/cron.d/trading-maintenance
install-schedule: setup
	@test -n "$(CONFIG)" || { echo "make install-schedule CONFIG=/path/to/maintenance.toml"; exit 2; }
	$(PY) -m suite.schedule install --config $(CONFIG) --cron-file $(CRON_FILE)

uninstall-schedule: setup
	$(PY) -m suite.schedule uninstall --cron-file $(CRON_FILE)

# After a human has looked: make clear-budget CHECK=SVC-001 CONFIG=...
clear-budget: setup
	$(PY) -m suite.state clear-budget $(CHECK) --config $(CONFIG)

bench: lab-up
	$(PY) bench/bench_logscan.py
	$(PY) bench/bench_daily.py

clean: lab-down
	rm -rf $(VENV) .lab
