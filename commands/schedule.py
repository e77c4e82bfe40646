"""Installs the guide's schedule, idempotently: install twice, get one schedule, by cron or by systemd, never both.

    python -m commands.schedule install --config /etc/trading-maintenance/maintenance.toml [--scheduler systemd]
    python -m commands.schedule uninstall          # whichever is installed
    python -m commands.schedule show --config PATH [--scheduler systemd]

The guide's times: daily 02:00, weekly Sunday 03:00, monthly the 1st at 04:00, and the emergency
checks every 5 minutes; a cadence is installed only when it has checks. Quarterly maintenance is
manual in the guide and is not scheduled. Each entry runs `python -m commands.run CADENCE --config
PATH` in the suite's directory (commands/run.py: secrets file, runs log, pruning). `--time
CADENCE=SPEC` moves a cadence (a cron time, or an OnCalendar= for systemd): to a window of your own,
or to the next minute in a test.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from commands import secretsfile, timers
from commands.timers import ScheduleError
from configuration import ConfigError, Settings, load
from core.atomic import write_atomically
from core.vocabulary import Cadence, ExitStatus

CRON_FILE = Path("/etc/cron.d/trading-maintenance")
ROOT = Path(__file__).resolve().parent.parent
# cron's own PATH is /usr/bin:/bin: without /usr/sbin a remediation finds no getcap, no logrotate.
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class When:
    cron: str
    calendar: str  # systemd's OnCalendar= for the same times


SCHEDULE = {
    Cadence.DAILY: When("0 2 * * *", "*-*-* 02:00:00"),
    Cadence.WEEKLY: When("0 3 * * 0", "Sun *-*-* 03:00:00"),
    Cadence.MONTHLY: When("0 4 1 * *", "*-*-01 04:00:00"),
    Cadence.EMERGENCY: When("*/5 * * * *", "*-*-* *:00/5:00"),
}


def cadences_with_checks(config: Path, python: Path) -> list[Cadence]:
    """A cadence without a check is not scheduled: every run of it would check nothing."""
    found = []
    for cadence in SCHEDULE:
        listed = subprocess.run([str(python), "-m", "pytest", "-m", cadence, "--collect-only", "-q", "-p",
                                 "no:cacheprovider", f"--maintenance-config={config}"], cwd=ROOT,
                                capture_output=True, text=True, timeout=120)
        if any("::" in line for line in listed.stdout.splitlines()):
            found.append(cadence)
    return found


def run_argv(python: Path, cadence: str, config: Path) -> list[str]:
    return [str(python), "-m", "commands.run", cadence, "--config", str(config)]


def cron_text(config: Path, python: Path, user: str, times: dict[Cadence, str], log_dir: Path) -> str:
    lines = [
        "# Trading box maintenance: written by `make install-schedule`; `make uninstall-schedule` removes it.",
        "# Scheduled: the cadences that have checks; the others are added when their checks are.",
        f"# Each run adds one line to {log_dir}/runs.log; its output is beside it.",
        "SHELL=/bin/sh",
        f"PATH={PATH}",
    ]
    for cadence, spec in times.items():
        command = f"cd {shlex.quote(str(ROOT))} && exec {shlex.join(run_argv(python, cadence, config))}"
        lines.append(f"{spec} {user} " + command.replace("%", "\\%"))  # cron makes a bare % a newline
    return "\n".join(lines) + "\n"


def unit_texts(config: Path, python: Path, user: str, times: dict[Cadence, str],
               secrets: Path | None = None) -> dict[str, str]:
    units = {}
    for cadence, calendar in times.items():
        service, timer = timers.names(cadence)
        units[service] = timers.service(cadence, run_argv(python, cadence, config), ROOT, user, PATH, secrets)
        units[timer] = timers.timer(cadence, calendar)
    return units


def parse_times(pairs: list[str], scheduler: str) -> dict[Cadence, str]:
    """The guide's times, with `--time CADENCE=SPEC` overrides in the scheduler's own syntax."""
    times = {cadence: when.calendar if scheduler == "systemd" else when.cron for cadence, when in SCHEDULE.items()}
    for pair in pairs:
        cadence, _, spec = pair.partition("=")
        if cadence not in SCHEDULE or not spec.strip() or "\n" in spec:
            raise ScheduleError(f"--time {pair!r}: expected CADENCE=SPEC with CADENCE one of {', '.join(SCHEDULE)}")
        if scheduler == "systemd":
            timers.check_calendar(spec)
        elif len(spec.split()) != 5:
            raise ScheduleError(f"--time {pair!r}: a cron time has 5 fields (minute hour day month weekday)")
        times[Cadence(cadence)] = spec.strip()
    return times


def user_id(user: str) -> int:
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        raise ScheduleError(f"user {user!r} does not exist: --user names who runs the schedule (root by default)") \
            from None


def prepare_log_dir(directory: Path, uid: int) -> None:
    """Created now, for the run's user: a run that cannot write its log has nowhere to say so."""
    if directory.exists():
        return
    try:
        directory.mkdir(parents=True, mode=0o750)
        os.chown(directory, uid, -1)
    except OSError as error:
        raise ScheduleError(f"cannot create [schedule] log_dir {directory}: {error.strerror}. Install as root, or "
                            f"create it for the user who runs the schedule (install -d -o USER {directory})") from None


def write_file(path: Path, text: str) -> None:
    try:
        write_atomically(path, text)
        path.chmod(0o644)
    except OSError as error:
        raise ScheduleError(f"cannot write {path}: {error.strerror}. Install the schedule as root (sudo make "
                            f"install-schedule ...), or give --cron-file/--unit-dir a path this user may write.") \
            from None


def needs_root(args: argparse.Namespace) -> str | None:
    """The system's own schedule directories are root's: say so before touching anything."""
    if os.geteuid() == 0:
        return None
    targets = {"cron": [args.cron_file], "systemd": [args.unit_dir]}
    chosen = [*targets["cron"], *targets["systemd"]] if args.action == "uninstall" else targets[args.scheduler]
    system = [str(path) for path in chosen if path in (CRON_FILE, timers.UNIT_DIR)]
    if not system:
        return None
    return (f"{' and '.join(system)} belong to root, and you are {secretsfile.user_name(os.geteuid())}: "
            f"run it as root (sudo make {args.action}-schedule ...)")


def install(args: argparse.Namespace, settings: Settings) -> None:
    uid = user_id(args.user)
    if settings.schedule.secrets_file is not None:
        secretsfile.check_path(settings.schedule.secrets_file, uid)
    times = parse_times(args.time, args.scheduler)
    config, python = args.config.resolve(), Path(sys.executable)
    chosen = cadences_with_checks(config, python)
    times = {cadence: spec for cadence, spec in times.items() if cadence in chosen}
    if args.scheduler == "cron":
        text = cron_text(config, python, args.user, times, settings.schedule.log_dir)
        if args.action == "show":
            print(text, end="")
            return
        prepare_log_dir(settings.schedule.log_dir, uid)
        remove_units(args.unit_dir)
        write_file(args.cron_file, text)
        print(f"installed {args.cron_file}:\n{text}", end="")
        return
    units = unit_texts(config, python, args.user, times, settings.schedule.secrets_file)
    if args.action == "show":
        print("\n".join(f"# {name}\n{text}" for name, text in units.items()), end="")
        return
    if args.unit_dir == timers.UNIT_DIR:
        timers.require_systemd()
    prepare_log_dir(settings.schedule.log_dir, uid)
    install_units(args.unit_dir, units)
    remove_cron(args.cron_file)
    print(f"installed in {args.unit_dir}: " + ", ".join(units) + "\n"
          + "".join(f"  {cadence}: OnCalendar={spec}\n" for cadence, spec in times.items()), end="")


def install_units(directory: Path, units: dict[str, str]) -> None:
    """Write, drop the cadences no longer scheduled, and (in the system's own directory) start the timers."""
    stale = [name for name in timers.installed(directory) if name not in units]
    active = directory == timers.UNIT_DIR
    if active and stale:
        timers.systemctl("disable", "--now", *[n for n in stale if n.endswith(".timer")])
    for name in stale:
        (directory / name).unlink(missing_ok=True)
    for name, text in units.items():
        write_file(directory / name, text)
    if active:
        timers.systemctl("daemon-reload")
        timers.systemctl("enable", "--now", *[n for n in units if n.endswith(".timer")])


def remove_units(directory: Path) -> bool:
    present = timers.installed(directory)
    if not present:
        return False
    active = directory == timers.UNIT_DIR and timers.BOOTED.is_dir()  # without systemd: only the files
    if active:
        timers.systemctl("disable", "--now", *[n for n in present if n.endswith(".timer")])
    for name in present:
        (directory / name).unlink(missing_ok=True)
    if active:
        timers.systemctl("daemon-reload")
    print(f"removed from {directory}: {', '.join(present)}")
    return True


def remove_cron(path: Path) -> bool:
    if not path.exists():
        return False
    path.unlink()
    print(f"removed {path}")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m commands.schedule", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("install", "uninstall", "show"))
    parser.add_argument("--config", type=Path, help="the configuration file the scheduled runs use")
    parser.add_argument("--scheduler", choices=("cron", "systemd"), default="cron")
    parser.add_argument("--cron-file", type=Path, default=CRON_FILE)
    parser.add_argument("--unit-dir", type=Path, default=timers.UNIT_DIR,
                        help="elsewhere than the default, the units are written but not enabled")
    parser.add_argument("--user", default="root", help="who the runs run as")
    parser.add_argument("--time", action="append", default=[], metavar="CADENCE=SPEC",
                        help="another time for a cadence: a cron time, or an OnCalendar= with --scheduler systemd")
    args = parser.parse_args(argv)
    verb = "removed" if args.action == "uninstall" else "installed"
    refusal = needs_root(args) if args.action != "show" else None
    if refusal:
        print(f"not {verb}: {refusal}", file=sys.stderr)
        return ExitStatus.BAD_CONFIGURATION
    try:
        if args.action == "uninstall":
            if not (remove_cron(args.cron_file) | remove_units(args.unit_dir)):
                print("no schedule was installed")
            return 0
        if args.config is None:
            parser.error(f"{args.action} needs --config PATH (the file the scheduled runs will use)")
        install(args, load(args.config))  # a schedule that would fail every night with a bad file is refused now
    except (ConfigError, ScheduleError, secretsfile.SecretsRefused) as error:
        print(f"not {verb}: {error}", file=sys.stderr)
        return ExitStatus.BAD_CONFIGURATION
    except OSError as error:  # removing a file of the other scheduler, reading a directory
        print(f"not {verb}: {error.filename}: {error.strerror}. Run it as root (sudo make {args.action}-schedule ...), "
              f"or give --cron-file/--unit-dir paths this user may change.", file=sys.stderr)
        return ExitStatus.BAD_CONFIGURATION
    return 0


if __name__ == "__main__":
    sys.exit(main())
