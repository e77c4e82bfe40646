# The trading box maintenance suite. `make demo` then `make test` on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Every Python package at the version the tests passed with; written by `make lock` from pyproject.toml.
LOCK := requirements.lock
export LAB_DIR ?= $(CURDIR)/.lab
LAB_CONFIG := $(LAB_DIR)/maintenance.toml
# The operator's configuration file; `make daily CONFIG=/etc/trading-maintenance/maintenance.toml`.
ifeq ($(origin CONFIG),undefined)
CONFIG := $(value MAINTENANCE_CONFIG)
endif
# Values given to make (NOTE="...", WHO=, WHY=, TASK=, BACKUP=, REF=, paths) reach each command exactly as typed,
# never parsed by a shell or by make: `$(call arg,NOTE)` is the variable's text unexpanded ($(value)), single-quoted
# for bash (a newline as $'\n'); `$(call opt,--who,WHO)` is `--who='...'` when WHO is set, `$(call given,NAME)` the
# word when NAME is set. They are not exported either: make expands a variable to export it, so a `$(shell ...)`
# typed in a note would run (`unexport` at the end of this file, after their defaults). PYTEST_ARGS alone is split
# by the shell, as pytest's own options.
define newline


endef
quote = '$(subst $(newline),'$$'\n'',$(subst ','\'',$1))'
arg = $(call quote,$(value $1))
opt = $(if $(value $2),$1=$(call arg,$2))
given = $(if $(value $1),$(call arg,$1))
DEMO_FAULTS := service-down:trading-dashboard files-past-retention error-rate-high new-error-code
PYTEST_ARGS ?=
# pytest-xdist workers for `make test-fast`.
WORKERS ?= 2
# What the lab needs from Debian (PostgreSQL's server), and what only its box mode needs (sshd, sudo,
# and cron for the test of the cron schedule inside a box; a box needs root anyway). Each package is installed only when the file named here is missing; while
# apt-get runs, a policy-rc.d keeps the packages from starting their services on the machine (an sshd
# on port 22, a PostgreSQL on 5432).
LAB_DEPS := postgresql:/usr/lib/postgresql/*/bin/postgres dpkg-dev:/usr/bin/dpkg-scanpackages openssh-client:/usr/bin/ssh-keygen
BOX_DEPS := openssh-server:/usr/sbin/sshd sudo:/usr/bin/sudo cron:/usr/sbin/cron nftables:/usr/sbin/nft iproute2:/usr/sbin/ip
# What only the suite's own tests use: headless Chromium renders the audit trail's pages (tests/test_index.py),
# promtool checks the Prometheus textfile (tests/test_prometheus.py). Installed for `make test` only (EXTRA_DEPS,
# a target-specific variable): `make daily` on the trading box must never install a browser or a Prometheus server.
TEST_DEPS := chromium:/usr/bin/chromium prometheus:/usr/bin/promtool

.PHONY: setup system-deps lock lint demo demo-lab demo-fleet test test-fast lab-up lab-down lab-status fault fault-clear \
        daily weekly monthly quarterly emergency bench clean \
        install-schedule uninstall-schedule clear-budget sudoers record-checksums show-checksums resume \
        restore restore-config update-minor update-major update-rollback update-os attest-rotation baseline attest \
        reindex verify-trail

setup: $(VENV)/.installed system-deps

# .venv holds exactly the lock: pip first at the lock's version, then every pin; pip-sync (in the lock)
# removes what the lock no longer names. A changed lock is newer than the stamp, so it reinstalls.
$(VENV)/.installed: $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$$(grep -m1 '^pip==' $(LOCK))"
	$(PY) -m pip install --quiet -r $(LOCK)
	$(VENV)/bin/pip-sync --quiet $(LOCK)
	touch $@

# Rewrite the lock after a change to pyproject.toml's dependencies. It keeps every pin that still
# fits; `make lock UPGRADE=1` moves everything to the newest versions pyproject.toml allows.
# Then `make setup` installs it and `make test` shows whether the tests still pass with it.
lock: $(VENV)/.installed
	CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile --quiet --allow-unsafe --strip-extras \
	  --extra lab --extra test --extra dev --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
	  $(if $(value UPGRADE),--upgrade) --output-file $(LOCK) pyproject.toml

# Installs what is missing with apt-get (one update first) when we may (root).
system-deps:
	@missing=""; box_missing=""; \
	for entry in $(LAB_DEPS); do ls $${entry#*:} >/dev/null 2>&1 || missing="$$missing $${entry%%:*}"; done; \
	for entry in $(BOX_DEPS) $(EXTRA_DEPS); do ls $${entry#*:} >/dev/null 2>&1 || box_missing="$$box_missing $${entry%%:*}"; done; \
	if [ "$$(id -u)" = 0 ] && [ -n "$$missing$$box_missing" ]; then \
	  echo "installing system packages for the lab:$$missing$$box_missing"; \
	  guard=""; if [ ! -e /usr/sbin/policy-rc.d ]; then guard=1; printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; \
	    chmod 755 /usr/sbin/policy-rc.d; fi; \
	  apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing $$box_missing >/dev/null; \
	  status=$$?; [ -n "$$guard" ] && rm -f /usr/sbin/policy-rc.d; [ $$status = 0 ] || exit $$status; \
	elif [ -n "$$missing" ]; then \
	  echo "the lab needs system packages that are missing:$$missing"; \
	  echo "install them as root:  apt-get install$$missing"; exit 1; \
	fi

lab-up: setup
	$(PY) -m lab up

lab-down:
	@if [ -x $(PY) ]; then $(PY) -m lab down; \
	  if [ -d .box ]; then $(PY) -m lab box down; fi; if [ -d .fleet ]; then $(PY) -m lab box fleet down; fi; fi

lab-status: setup
	$(PY) -m lab status

# make fault NAME=service-down:trading-agent ; make fault-clear (all) or make fault-clear NAME=...
fault: setup
	$(PY) -m lab fault inject $(call given,NAME)

fault-clear: setup
	$(PY) -m lab fault clear $(if $(value NAME),$(call arg,NAME),--all)

# make demo: the lab (as any user). make demo BOXES=3 (root): a fleet of systemd boxes watched over SSH.
BOXES ?= 0
FLEET_FAULTS := service-down:postgresql health-low files-past-retention
demo: $(if $(filter-out 0,$(value BOXES)),demo-fleet,demo-lab)

demo-fleet: setup
	@$(PY) -m lab box fleet up $(call arg,BOXES)
	@n=0; for fault in $(foreach f,$(value FLEET_FAULTS),$(call quote,$f)); do n=$$((n+1)); \
	  [ $$n -le $(call arg,BOXES) ] || break; $(PY) -m lab box --dir .fleet/box-$$n fault inject "$$fault"; done
	@echo
	@echo "Running the daily cadence over SSH against "$(call arg,BOXES)" box(es), one fault each: "$(call arg,FLEET_FAULTS)
	@$(PY) -m pytest -m daily --maintenance-config=.fleet/maintenance.toml -q -n auto --dist loadgroup $(PYTEST_ARGS); \
	  status=$$?; echo; echo "daily run exit status $$status (see README: exit statuses)"; \
	  echo "the boxes keep running: make lab-down to stop them"

demo-lab: lab-up
	@$(PY) -m lab fault clear --all >/dev/null
	@for fault in $(foreach f,$(value DEMO_FAULTS),$(call quote,$f)); do $(PY) -m lab fault inject "$$fault"; done
	@echo
	@echo "Running the daily cadence against the lab (faults injected: "$(call arg,DEMO_FAULTS)")"
	@$(PY) -m pytest -m daily --maintenance-config=$(call quote,$(LAB_CONFIG)) -q $(PYTEST_ARGS); status=$$?; \
	  echo; echo "daily run exit status $$status (see README: exit statuses)"; \
	  echo "the lab keeps running: make lab-down to stop it"

# The code's style and errors (configuration: [tool.ruff] in pyproject.toml).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

# The shipped example configuration and the configuration reference, written from the schema's descriptions
# (configuration/reference.py); run after changing a section, and commit both (a test compares them).
.PHONY: example-config
example-config: $(VENV)/.installed
	$(PY) -m configuration.reference example config/maintenance.example.toml
	$(PY) -m configuration.reference markdown docs/configuration.md

# Everything: the lint, then the suite's own tests: those without a lab on $(WORKERS) workers, then the lab's on
# two, a whole module on one worker (--dist loadfile: a module's own lab or box has fixed ports) and a session
# lab per worker on its own ports (tests/conftest.py). Both parts run; either failing fails the target.
# A part that PYTEST_ARGS leaves empty (status 5, no tests) is no failure.
test: EXTRA_DEPS = $(TEST_DEPS)
test: setup lint
	status=0; \
	$(PY) -m pytest -c tests/pytest.ini -m "not lab" -n $(call arg,WORKERS) $(PYTEST_ARGS) tests || { s=$$?; [ $$s = 5 ] || status=$$s; }; \
	$(PY) -m pytest -c tests/pytest.ini -m lab -n 2 --dist loadfile $(PYTEST_ARGS) tests || { s=$$?; [ $$s = 5 ] || status=$$s; }; \
	exit $$status

# Every test that needs no lab, on $(WORKERS) pytest-xdist workers.
test-fast: $(VENV)/.installed
	$(PY) -m pytest -c tests/pytest.ini -m "not lab" -n $(call arg,WORKERS) $(PYTEST_ARGS) tests

# GNU make exits 2 for any failed recipe, whatever its status: the run's own status (README: exit
# statuses) is printed last, in words. `python -m commands run CADENCE --config PATH` (what the schedule
# runs) and pytest itself exit with it.
daily weekly monthly quarterly emergency: setup
	@$(PY) -m pytest -m $@ $(call opt,--maintenance-config,CONFIG) $(PYTEST_ARGS); status=$$?; \
	  echo "$@ run exit status $$status: $$($(PY) -c 'import sys; from commands.runslog import meaning; \
	  print(meaning(int(sys.argv[1])))' $$status) (README: exit statuses)"; exit $$status

# The guide's schedule, as root: SCHEDULER=cron writes /etc/cron.d/trading-maintenance (CRON_FILE=...),
# SCHEDULER=systemd a .service and .timer per cadence in /etc/systemd/system (UNIT_DIR=...), enabled.
# RUN_USER: who the runs run as (root); refused when it could not read the SSH key, the host keys, the secrets
# file or write the state directory. Each run is `python -m commands run CADENCE` (README: Running unattended).
# TIMES="emergency=*:*:0/30" moves a cadence (an OnCalendar= for systemd, a cron time for cron; space-separated):
# the guide's 5 minutes is the emergency default, a systemd timer can look every 30 s. MAIL_TO=ops@example.org:
# cron's MAILTO, who is mailed when a run could not check a box or deliver an alert.
# make show-schedule (same values): prints what install-schedule would write, and writes nothing.
SCHEDULER ?= cron
CRON_FILE ?= /etc/cron.d/trading-maintenance
UNIT_DIR ?= /etc/systemd/system
RUN_USER ?= root
SCHEDULE_ARGS = --config=$(call arg,CONFIG) --scheduler=$(call arg,SCHEDULER) --user=$(call arg,RUN_USER) \
  --cron-file=$(call arg,CRON_FILE) --unit-dir=$(call arg,UNIT_DIR) $(call opt,--mail-to,MAIL_TO) \
  $(foreach time,$(value TIMES),--time=$(call quote,$(time)))
install-schedule: setup
	@test -n $(call arg,CONFIG) || { echo "make install-schedule CONFIG=/path/to/maintenance.toml [SCHEDULER=systemd]"; exit 2; }
	$(PY) -m commands schedule install $(SCHEDULE_ARGS)

# Its standard output is the schedule alone (the venv's setup goes to stderr, as for make sudoers).
.PHONY: show-schedule
show-schedule:
	@test -n $(call arg,CONFIG) || { echo "make show-schedule CONFIG=/path/to/maintenance.toml [SCHEDULER=systemd]" >&2; exit 2; }
	@$(MAKE) --no-print-directory -s $(VENV)/.installed >&2
	@$(PY) -m commands schedule show $(SCHEDULE_ARGS)

uninstall-schedule: setup
	$(PY) -m commands schedule uninstall --cron-file=$(call arg,CRON_FILE) --unit-dir=$(call arg,UNIT_DIR)

# The sudo rules the maintenance user needs on the box: make sudoers CONFIG=... [SUDO_USER_NAME=trading-maint]
# > FILE. Its standard output is the rules alone: the venv's setup and every message go to stderr. It needs
# the venv only (no system package is installed on the box for it).
sudoers:
	@test -n $(call arg,CONFIG) || { echo "make sudoers CONFIG=/path/to/maintenance.toml [SUDO_USER_NAME=user]" >&2; exit 2; }
	@$(MAKE) --no-print-directory -s $(VENV)/.installed >&2
	@$(PY) -m commands sudoers --config=$(call arg,CONFIG) $(call opt,--user,SUDO_USER_NAME)

# The box's host keys, trusted once you have compared them (README: From another machine, over SSH), before the
# first run over SSH: make trust-box CONFIG=... [BOX=name] [FINGERPRINT=SHA256:...]. It prints each key's
# fingerprint; on a terminal it asks before writing them to [host] known_hosts; FINGERPRINT= writes the one key
# it names, without asking. Nothing is written otherwise.
.PHONY: trust-box
trust-box: $(VENV)/.installed
	@test -n $(call arg,CONFIG) || { echo "make trust-box CONFIG=/path/to/maintenance.toml [BOX=name] [FINGERPRINT=SHA256:...]" >&2; exit 2; }
	@$(PY) -m commands trustbox --config=$(call arg,CONFIG) $(call opt,--box,BOX) $(call opt,--fingerprint,FINGERPRINT)

# The programs those rules name, root's, where only root can write (the retention walker, the backup program): as
# root, on the box.
# Again after every update of the suite. `python -m commands boxhelpers show` says whether the box has this one.
.PHONY: install-box-helpers
install-box-helpers: $(VENV)/.installed
	$(PY) -m commands boxhelpers install

# The baseline of the critical files (SEC-003), written on the box: make record-checksums CONFIG=... [BOX=name]
# once the files are known good and after every intended change; make show-checksums compares them.
record-checksums show-checksums: setup
	@test -n $(call arg,CONFIG) || { echo "make $@ CONFIG=/path/to/maintenance.toml [BOX=name]"; exit 2; }
	$(PY) -m commands checksums $(@:%-checksums=%) --config=$(call arg,CONFIG) $(call opt,--box,BOX)

# After a human has looked: make clear-budget TARGET="nuc-1 service trading-dashboard" CONFIG=...
# (TARGET: a part of the target's name; CHECK=SVC-001: the targets that check acted on; neither: all)
# After an emergency response held trading (paused, stopped): make resume CONFIG=... WHO=name WHY="what was
# found and done" [BOX=name]. Nothing resumes by itself; this undoes what the responses did and records it.
resume: setup
	@test -n $(call arg,CONFIG) -a -n $(call arg,WHO) -a -n $(call arg,WHY) || { echo 'make resume CONFIG=/path/to/maintenance.toml WHO=name WHY="..." [BOX=name]'; exit 2; }
	$(PY) -m commands resume --config=$(call arg,CONFIG) --who=$(call arg,WHO) --why=$(call arg,WHY) $(call opt,--box,BOX)

# The guide's Recovery Procedures, made safe (README: Backups and recovery): the backup is read back first and
# refused (status 4) if it does not verify; PLAN=1 prints each step and changes nothing.
# make restore-config BACKUP=full-20261122-030000 CONFIG=...   (.env and config/, then the agent and dashboard restarted)
# make restore BACKUP=full-20261122-030000 CONFIG=... [PLAN=1] (files and database; the old database kept, renamed)
restore restore-config: setup
	@test -n $(call arg,CONFIG) -a -n $(call arg,BACKUP) || { echo "make $@ BACKUP=full-YYYYmmdd-HHMMSS CONFIG=/path/to/maintenance.toml [PLAN=1] [BOX=name]"; exit 2; }
	$(PY) -m commands restore $(if $(filter restore-config,$@),config,full) --config=$(call arg,CONFIG) \
	  --backup=$(call arg,BACKUP) $(if $(value PLAN),--plan) $(call opt,--box,BOX)

# The guide's Update Procedures 1-2, rolled back when they fail (README: Updating the application). Without APPLY=1
# every step is printed with its commands and nothing changes (PLAN=1 says the same explicitly).
# make update-minor CONFIG=... [APPLY=1]            (the configured branch, fast-forward only)
# make update-major REF=v2.0.0 CONFIG=... [APPLY=1] (a tag or commit; services stopped, a full backup, migrations)
# make update-rollback CONFIG=... [APPLY=1]         (undo an update that was killed or whose rollback failed)
# Only APPLY=1 applies (APPLY=0 or yes plans); PLAN=1 plans whatever APPLY says.
APPLYING = $(if $(filter 1,$(value PLAN)),,$(filter 1,$(value APPLY)))
update-minor update-major update-rollback: setup
	@test -n $(call arg,CONFIG) || { echo "make $@ CONFIG=/path/to/maintenance.toml $(if $(filter update-major,$@),REF=TAG_OR_COMMIT )[APPLY=1] [BOX=name]"; exit 2; }
	@test "$@" != update-major -o -n $(call arg,REF) || { echo "make update-major REF=TAG_OR_COMMIT CONFIG=... [APPLY=1]"; exit 2; }
	$(PY) -m commands update $(@:update-%=%) --config=$(call arg,CONFIG) $(call opt,--ref,REF) \
	  $(if $(APPLYING),--apply) $(call opt,--box,BOX)

# The guide's System Updates 1, made safe (README: Package updates): the plan by default; APPLY=1 takes a backup,
# installs every pending update but [updates] hold (the kernel), runs the daily checks and schedules a needed reboot.
# make update-os CONFIG=... [APPLY=1] [BOX=name]
update-os: setup
	@test -n $(call arg,CONFIG) || { echo "make update-os CONFIG=/path/to/maintenance.toml [APPLY=1] [BOX=name]"; exit 2; }
	$(PY) -m commands osupdate --config=$(call arg,CONFIG) $(if $(APPLYING),--apply) $(call opt,--box,BOX)

# After rotating a secret of [rotation] (KEY-001, quarterly): make attest-rotation WHAT=exchange-api-key WHO=name
# [WHEN=YYYY-MM-DD] CONFIG=... [BOX=name]; recorded beside the suite's state and in the ledger.
attest-rotation: setup
	@test -n $(call arg,CONFIG) -a -n $(call arg,WHAT) -a -n $(call arg,WHO) || { echo 'make attest-rotation WHAT=secret WHO=name [WHEN=YYYY-MM-DD] CONFIG=/path/to/maintenance.toml [BOX=name]'; exit 2; }
	$(PY) -m commands attest --config=$(call arg,CONFIG) --what=$(call arg,WHAT) --who=$(call arg,WHO) $(call opt,--when,WHEN) \
	  $(call opt,--box,BOX)

# The benchmarks' baselines (BENCH-001..003, EHM-004; the first monthly run records them by itself), measured now
# and recorded on purpose, each a line of the ledger: make baseline CONFIG=... [WHAT=api,database,disk,error-handling]
# [BOX=name] [WHO=name] [WHY="new SSD"]
baseline: setup
	@test -n $(call arg,CONFIG) || { echo 'make baseline CONFIG=/path/to/maintenance.toml [WHAT=api,database,disk,error-handling] [BOX=name] [WHO=name] [WHY="..."]'; exit 2; }
	$(PY) -m commands baseline --config=$(call arg,CONFIG) $(call opt,--what,WHAT) $(call opt,--box,BOX) \
	  $(call opt,--who,WHO) $(call opt,--why,WHY)

# After doing a manual task of [tasks] (TASK-001..003): make attest TASK=strategy-optimization NOTE="what was done"
# [WHO=name] [WHEN=YYYY-MM-DD] CONFIG=... [BOX=name]; WHO defaults to $SUDO_USER, else $USER.
attest: setup
	@test -n $(call arg,CONFIG) -a -n $(call arg,TASK) || { echo 'make attest TASK=task NOTE="what was done" [WHO=name] [WHEN=YYYY-MM-DD] CONFIG=/path/to/maintenance.toml [BOX=name]'; exit 2; }
	$(PY) -m commands attest --config=$(call arg,CONFIG) --task=$(call arg,TASK) --note=$(call arg,NOTE) \
	  $(call opt,--who,WHO) $(call opt,--when,WHEN) $(call opt,--box,BOX)

# The audit trail's pages (index.html, history/, trends.html) and the Prometheus textfile, made again from the
# ledger and the reports alone (README: The audit trail): make reindex CONFIG=... [REPORTS_DIR=dir]
reindex: setup
	@test -n $(call arg,CONFIG) || { echo "make reindex CONFIG=/path/to/maintenance.toml [REPORTS_DIR=dir]"; exit 2; }
	$(PY) -m commands reindex --config=$(call arg,CONFIG) $(call opt,--reports-dir,REPORTS_DIR)

# The audit trail (README: The audit trail): the ledger's chain and every report it names, checked; exit 0 when
# intact, 1 with each finding listed. make verify-trail CONFIG=... [REPORTS_DIR=dir] [HEAD=seq:hash kept elsewhere]
verify-trail: setup
	@test -n $(call arg,CONFIG) || { echo 'make verify-trail CONFIG=/path/to/maintenance.toml [REPORTS_DIR=dir] [HEAD=seq:hash]'; exit 2; }
	$(PY) -m commands trail --config=$(call arg,CONFIG) $(call opt,--reports-dir,REPORTS_DIR) $(call opt,--head,HEAD)

clear-budget: setup
	$(PY) -m commands budget clear $(call given,CHECK) $(call opt,--target,TARGET) --config=$(call arg,CONFIG)

bench: lab-up
	$(PY) bench/bench_logscan.py
	$(PY) bench/bench_daily.py
	$(PY) bench/bench_startup.py
	$(PY) bench/bench_emergency.py
	$(PY) bench/bench_backup.py
	$(PY) bench/bench_index.py
	$(PY) bench/bench_retention.py
	@if [ "$$(id -u)" = 0 ]; then $(PY) bench/bench_fleet.py; \
	  else echo "bench_fleet: skipped, boxes need root (a real systemd in its own namespaces)"; fi

clean: lab-down
	rm -rf $(VENV) .lab .ruff_cache

# The values typed to make, never exported (see `arg` above); last, so that each one's default (`?=`) is set first.
USER_VALUES := CONFIG NAME BOXES WORKERS TIMES SCHEDULER CRON_FILE UNIT_DIR RUN_USER SUDO_USER_NAME BOX WHO WHY \
  BACKUP PLAN REF APPLY WHAT WHEN TASK NOTE REPORTS_DIR HEAD CHECK TARGET UPGRADE FLEET_FAULTS DEMO_FAULTS \
  FINGERPRINT MAIL_TO
unexport $(USER_VALUES)
