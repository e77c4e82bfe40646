"""`python -m commands run daily --config PATH`: one scheduled run, as cron and the systemd timers start it.

A scheduled run has no operator's shell around it, so this gives it what the shell would have:
- [schedule] secrets_file checked before anything runs (refused unless mode 600 and the run user's own); the
  run's plugin reads it as every run does (configuration/secretsfile.py): its values never enter an environment;
- the suite's directory to run in; pytest's output into [schedule] log_dir/<cadence>-<time>.log;
- one line in log_dir/runs.log: when, the cadence, the exit status and its meaning, the report;
- old runs' records pruned ([reports] keep_days, keep_count); the reports named first in the ledger's
  prune line (reports/retention.py).

Its exit status is the run's own (README: exit statuses); 4 when the configuration or the secrets file
is refused, said in one line on stderr and in runs.log (so it reads the file itself, not as commands/cli.py
does for the other verbs). `python -m commands.run CADENCE --config PATH` does the same: it is what schedules
installed before `python -m commands` existed run, and they keep working.
"""

from __future__ import annotations

import argparse
import datetime
import os
import signal
import subprocess
import sys
import tomllib
from contextlib import suppress
from pathlib import Path

from filelock import Timeout

from commands import cli, runslog
from configuration import ConfigError, Settings, load, secretsfile
from configuration.schema import Reports, Schedule
from core import rootfiles
from core.ledger import LedgerError
from core.vocabulary import Cadence, ExitStatus
from reports.files import report_stem
from reports.retention import prune_directory, prune_reports

ROOT = Path(__file__).resolve().parent.parent
OUTPUT_SUFFIX = ".log"


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cadence", choices=tuple(Cadence))


def run(call: cli.Call) -> int:
    cadence, config = call.args.cadence, call.require_config()
    started = datetime.datetime.now().astimezone()
    try:
        settings = load(config)
    except ConfigError as error:
        return refuse(log_dir_of(config), started, cadence, str(error))
    log_dir = settings.schedule.log_dir
    try:
        if settings.schedule.secrets_file is not None:  # refused here, in one line and in runs.log
            secretsfile.read(settings.schedule.secrets_file)
        output, handle = open_output(log_dir, cadence, started)
    except secretsfile.SecretsRefused as error:
        return refuse(log_dir, started, cadence, str(error))
    except OSError as error:
        return refuse(log_dir, started, cadence, cannot_write(error))
    reports = settings.reports.dir
    before = set(reports.glob(f"{cadence}-*.html"))
    with handle:
        code = run_pytest(cadence, config.resolve(), dict(os.environ), handle)
    report = max(set(reports.glob(f"{cadence}-*.html")) - before, default=None)
    seconds = (datetime.datetime.now().astimezone() - started).total_seconds()
    record(settings, runslog.line(started, cadence, code, seconds, report, output))
    return code


def run_pytest(cadence: str, config: Path, env: dict[str, str], output) -> int:
    """pytest -m CADENCE in the suite's directory; a SIGTERM for this process (systemd stopping the run,
    a timeout) is passed on, so the run ends as interrupted and still gets its line."""
    argv = [sys.executable, "-m", "pytest", "-m", cadence, "-q", f"--maintenance-config={config}"]
    child = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=output,
                             stderr=subprocess.STDOUT)
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda received, _frame: child.send_signal(received))
    return child.wait()


def open_output(log_dir: Path, cadence: str, started: datetime.datetime):
    """log_dir/<cadence>-<time>.log, new (never another run's, never through a link), mode 0600 from its first
    byte: it holds the run's findings (core/rootfiles.py)."""
    when = started
    while True:
        path = log_dir / f"{report_stem(cadence, when)}{OUTPUT_SUFFIX}"
        try:
            descriptor = rootfiles.create(path, rootfiles.PRIVATE)
        except FileExistsError:
            when += datetime.timedelta(milliseconds=1)
            continue
        return path, os.fdopen(descriptor, "w")


def record(settings: Settings, text: str) -> None:
    """The run's line in runs.log, then the old runs' records pruned; a failure here is said, never raised:
    the run itself is over and its status stands."""
    keep = settings.reports
    try:
        runslog.append(settings.schedule.log_dir / runslog.RUNS_LOG, text, keep.keep_days, keep.keep_count)
        prune_directory(settings.schedule.log_dir, (OUTPUT_SUFFIX,), keep.keep_days, keep.keep_count)
    except OSError as error:
        print(f"maintenance run: {cannot_write(error)}", file=sys.stderr)
    except Timeout as error:
        print(f"maintenance run: no line in the runs log: {error}", file=sys.stderr)
    try:  # named in the ledger first (a prune line), then deleted; nothing deleted when it cannot be named
        prune_reports(settings.reports.dir, keep.keep_days, keep.keep_count)
    except (OSError, Timeout, LedgerError) as error:
        print(f"maintenance run: old reports not pruned: {error}", file=sys.stderr)


def refuse(log_dir: Path, started: datetime.datetime, cadence: str, why: str) -> int:
    """Nothing ran: one line on stderr (cron mails it, the journal keeps it) and, when it can, in runs.log."""
    print(f"maintenance {cadence} run refused: {why}", file=sys.stderr)
    text = runslog.line(started, cadence, ExitStatus.BAD_CONFIGURATION, why=" ".join(why.split()))
    with suppress(OSError):  # then the line on stderr is all there can be
        runslog.append(log_dir / runslog.RUNS_LOG, text, Reports().keep_days, Reports().keep_count)
    return ExitStatus.BAD_CONFIGURATION


def log_dir_of(path: Path) -> Path:
    """[schedule] log_dir from a file that does not load as a whole, if it says; else the default."""
    try:
        return Schedule.model_validate(tomllib.loads(path.read_text()).get("schedule", {})).log_dir
    except (OSError, ValueError, AttributeError, RecursionError):  # ValueError: not UTF-8, not TOML
        return Schedule().log_dir


def cannot_write(error: OSError) -> str:
    if isinstance(error, rootfiles.RefusedFile):  # it names the file, the directory and what to do
        return str(error)
    where = error.filename or "the log directory"
    return (f"cannot write {where}: {error.strerror}. The runs log and outputs go to [schedule] log_dir: "
            f"create it for the user the schedule runs as (install -d -o USER {where}), or choose another")


VERB = cli.Verb(
    "run", "one scheduled run of a cadence, as cron and the systemd timers start it (make install-schedule)",
    __doc__, arguments, run, secrets=False)


if __name__ == "__main__":  # `python -m commands.run`: what a schedule installed before `python -m commands` runs
    from commands.__main__ import main

    cli.exit_as(main(["run", *sys.argv[1:]]))
