"""Installs the guide's schedule, idempotently: install twice, get one schedule, by cron or by systemd, never both.

    python -m commands schedule install --config /etc/trading-maintenance/maintenance.toml [--scheduler systemd]
    python -m commands schedule uninstall          # whichever is installed
    python -m commands schedule show --config PATH [--scheduler systemd]

The guide's times: daily 02:00, weekly Sunday 03:00, monthly the 1st at 04:00, and the emergency
checks every 5 minutes; a cadence is installed only when it has checks. The guide does its quarterly
maintenance by hand; its checks are scheduled anyway, at a quiet time: 05:00 on the first of January,
April, July and October (after the monthly run of that day). Each entry runs `python -m commands run
CADENCE --config PATH` in the suite's directory (commands/run.py: secrets file, runs log, pruning); a schedule
installed before `python -m commands` existed runs `python -m commands.run`, which still works: installing
again writes the new form.
`--time CADENCE=SPEC` moves a cadence (a cron time, or an OnCalendar= for systemd): to a window of your
own, or to the next minute in a test.

`show` prints what `install` would write and writes nothing. Both refuse (status 4, one line) a run user
who could not do the run's work: read the SSH key, the box's trusted host keys, the secrets file and the
suite's checkout, and write the state and reports directories; each is named. The check is made as that
user (a child process that becomes it), so groups and every directory on the way count.

A run that could not check a box (12) or could not deliver an alert (14) is a failure of the schedule, not
a finding: nobody may have been told. Under systemd the unit fails (commands/timers.py); under cron the
line prints one sentence on stderr, which cron mails (`--mail-to`, make's MAIL_TO) and logs.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from commands import cli, timers
from commands.timers import ScheduleError
from configuration import Settings, secretsfile
from core import asuser
from core.atomic import write_atomically
from core.vocabulary import Cadence, ExitStatus

CRON_FILE = Path("/etc/cron.d/trading-maintenance")
ROOT = Path(__file__).resolve().parent.parent
# cron's own PATH is /usr/bin:/bin: without /usr/sbin a remediation finds no getcap, no logrotate.
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# cron's MAILTO: one address or local user, nothing that could end its line or start another.
MAIL_ADDRESS = re.compile(r"[A-Za-z0-9._+-]+(@[A-Za-z0-9.-]+)?")


@dataclass(frozen=True)
class When:
    cron: str
    calendar: str  # systemd's OnCalendar= for the same times


SCHEDULE = {
    Cadence.DAILY: When("0 2 * * *", "*-*-* 02:00:00"),
    Cadence.WEEKLY: When("0 3 * * 0", "Sun *-*-* 03:00:00"),
    Cadence.MONTHLY: When("0 4 1 * *", "*-*-01 04:00:00"),
    # Manual in the guide; its checks (package updates, the disks' health, key rotation) run at a quiet hour.
    Cadence.QUARTERLY: When("0 5 1 1,4,7,10 *", "*-01,04,07,10-01 05:00:00"),
    Cadence.EMERGENCY: When("*/5 * * * *", "*-*-* *:00/5:00"),
}
# One collection for every cadence: which of them have checks, as the run's own pytest sees the configuration.
_CADENCES_PROGRAM = """
import json, sys, pytest

class Seen:
    names = set()

    def pytest_collection_finish(self, session):
        self.names.update(mark.name for item in session.items for mark in item.iter_markers())

seen = Seen()
status = pytest.main(["--collect-only", "-qq", "-p", "no:cacheprovider", "--maintenance-config=" + sys.argv[1]],
                     plugins=[seen])
print("\\ncadences " + json.dumps({"status": int(status), "marks": sorted(seen.names)}))
"""


def cadences_with_checks(config: Path, python: Path) -> list[Cadence]:
    """A cadence without a check is not scheduled: every run of it would check nothing. A configuration whose
    checks cannot be collected is refused: every run would fail the same way."""
    listed = subprocess.run([str(python), "-c", _CADENCES_PROGRAM, str(config)], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    last = (listed.stdout.strip().splitlines() or [""])[-1]
    found = json.loads(last.removeprefix("cadences ")) if last.startswith("cadences ") else None
    if found is None or found["status"] not in (0, 5):
        said = [line.strip() for line in (listed.stderr + listed.stdout).splitlines()
                if line.strip() and not line.startswith("cadences ")]
        detail = said[-1] if said else f"exit status {listed.returncode}"
        raise ScheduleError(f"the checks could not be collected with {config} ({detail}): make daily "
                            f"CONFIG={config} shows why")
    return [cadence for cadence in SCHEDULE if cadence in found["marks"]]


def run_argv(python: Path, cadence: str, config: Path) -> list[str]:
    return [str(python), "-m", "commands", "run", cadence, "--config", str(config)]


def cron_command(python: Path, cadence: str, config: Path, log_dir: Path) -> str:
    """The run, then one sentence on stderr when its status is no success for a scheduler (timers.SUCCESS: the
    statuses a systemd unit takes as success): cron mails a job's output, so the cron line fails as the unit
    does, in cron's way."""
    success = "|".join(str(status) for status in (0, *timers.SUCCESS))
    said = (shlex.quote(f"trading maintenance: the {cadence} run ended with exit status ") + '"$s"'
            + shlex.quote(f": not checked, or not told (README: exit statuses); see {log_dir / 'runs.log'}"))
    return (f"cd {shlex.quote(str(ROOT))} && {shlex.join(run_argv(python, cadence, config))}; s=$?; "
            f"case $s in {success}) ;; *) echo {said} >&2 ;; esac; exit $s")


def cron_text(config: Path, python: Path, user: str, times: dict[Cadence, str], log_dir: Path,
              mail_to: str | None = None) -> str:
    lines = [
        "# Trading box maintenance: written by `make install-schedule`; `make uninstall-schedule` removes it.",
        "# Scheduled: the cadences that have checks; the others are added when their checks are.",
        f"# Each run adds one line to {log_dir}/runs.log; its output is beside it. A run that could not check a",
        "# box or could not deliver an alert says so on stderr, which cron mails (MAILTO) and logs.",
        "SHELL=/bin/sh",
        f"PATH={PATH}",
        *([f"MAILTO={mail_to}"] if mail_to else []),
    ]
    for cadence, spec in times.items():
        lines.append(f"{spec} {user} " + cron_command(python, cadence, config, log_dir).replace("%", "\\%"))
    return "\n".join(lines) + "\n"  # cron makes a bare % a newline: each is escaped above


def unit_texts(config: Path, python: Path, user: str, times: dict[Cadence, str]) -> dict[str, str]:
    units = {}
    for cadence, calendar in times.items():
        service, timer = timers.names(cadence)
        units[service] = timers.service(cadence, run_argv(python, cadence, config), ROOT, user, PATH)
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
    """0644 from the first byte, never through a link (core/rootfiles.py): cron and systemd read it as root."""
    try:
        write_atomically(path, text, 0o644)
    except OSError as error:
        raise ScheduleError(f"cannot write {path}: {error.strerror or error}. Install the schedule as root (sudo make "
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


@dataclass(frozen=True)
class Need:
    """Something the run's user must reach: `access` is "read", "run" or "write" (a directory, or where it will be)."""

    what: str
    path: Path
    access: str


def needs_of(settings: Settings, python: Path) -> list[Need]:
    """What every scheduled run of this configuration reads and writes, as its user."""
    found = [Need("the suite's checkout", ROOT, "read"), Need("the suite's python", python, "run")]
    if settings.schedule.secrets_file is not None:
        found.append(Need("the secrets file ([schedule] secrets_file)", settings.schedule.secrets_file, "read"))
    if settings.schedule.log_dir.exists():  # else the install makes it, the user's
        found.append(Need("the runs log's directory ([schedule] log_dir)", settings.schedule.log_dir, "write"))
    for box in settings.boxes():
        name = box.host.name
        if box.host.backend.startswith("ssh://"):
            if box.host.ssh_identity_file is not None:
                found.append(Need(f"box {name}'s SSH key ([host] ssh_identity_file)", box.host.ssh_identity_file,
                                  "read"))
            if box.host.ssh_config is not None:
                found.append(Need(f"box {name}'s ssh_config ([host] ssh_config)", box.host.ssh_config, "read"))
            found.append(Need(f"box {name}'s trusted host keys ([host] known_hosts; make trust-box BOX={name})",
                              box.host.known_hosts_file(in_suite(box.policy.state_dir)), "read"))
        found.append(Need("the state directory ([policy] state_dir)", in_suite(box.policy.state_dir), "write"))
        found.append(Need("the reports directory ([reports] dir)", in_suite(box.reports.dir), "write"))
    unique: dict[tuple[Path, str], Need] = {}
    for need in found:
        unique.setdefault((need.path, need.access), need)
    return list(unique.values())


def in_suite(path: Path) -> Path:
    """A path as the run resolves it: a relative one is in the suite's directory, where the run starts."""
    return path if path.is_absolute() else ROOT / path


def problems(needs: list[Need], user: str) -> list[str]:
    """What this process (become the run's user) cannot do of `needs`, each naming the path and why."""
    found = []
    for need in needs:
        problem = _write_problem(need.path, user) if need.access == "write" else _read_problem(need, user)
        if problem:
            found.append(f"{need.what} {need.path}: {problem}")
    return found


def _read_problem(need: Need, user: str) -> str | None:
    try:
        is_directory = need.path.is_dir()
        need.path.stat()
    except FileNotFoundError:
        return "does not exist"
    except PermissionError:
        real = os.path.realpath(need.path)
        where = f" ({need.path} is {real})" if real != str(need.path) else ""
        return f"{user} cannot reach it (a directory on its way is closed to {user}){where}"
    if need.access == "run":
        return None if os.access(need.path, os.X_OK) else f"{user} cannot run it"
    wanted = os.R_OK | (os.X_OK if is_directory else 0)
    return None if os.access(need.path, wanted) else f"{user} cannot read it"


def _write_problem(directory: Path, user: str) -> str | None:
    """A directory the run writes in, or makes: then its nearest existing parent must let the user."""
    existing = directory
    while True:
        try:
            existing.stat()
            break
        except FileNotFoundError:
            existing = existing.parent
        except PermissionError:
            return f"{user} cannot reach it (a directory on its way is closed to {user})"
    if not existing.is_dir():
        return f"{existing} is not a directory"
    if os.access(existing, os.W_OK | os.X_OK):
        return None
    if existing == directory:
        return f"{user} cannot write it"
    return f"does not exist, and {user} cannot make it in {existing} (install -d -o {user} {directory})"


def refused_user(user: str, needs: list[Need]) -> str | None:
    """Why `user` could not do the run's work, checked as that user (a child that becomes it: its groups, and
    every directory on the way, count as they will at 02:00); None when it can. Only root can take another
    user's view: otherwise that user is not checked, and it is said."""
    entry = pwd.getpwnam(user)
    if entry.pw_uid == os.geteuid():
        found = problems(needs, user)
    elif os.geteuid() != 0:
        print(f"the run user {user} was not checked: only root can look as another user", file=sys.stderr)
        return None
    else:
        found = _problems_as(entry, needs)
    if not found:
        return None
    return (f"the run user {user} could not do the scheduled run's work: {'; '.join(found)}. Give {user} that "
            f"access, or choose a run user who has it (RUN_USER=, --user)")


def _problems_as(entry: pwd.struct_passwd, needs: list[Need]) -> list[str]:
    kind, said = asuser.as_user(entry.pw_uid, entry.pw_gid, os.getgrouplist(entry.pw_name, entry.pw_gid),
                                lambda: json.dumps(problems(needs, entry.pw_name)).encode())
    if kind is not None:
        raise ScheduleError(f"the run user {entry.pw_name} could not be checked (a child process could not become "
                            f"it): install as root")
    return json.loads(said)


def install(args: argparse.Namespace, config: Path, settings: Settings) -> None:
    """`install` writes the schedule; `show` prints what it would write and, after it, a refusal install would make."""
    uid = user_id(args.user)
    if settings.schedule.secrets_file is not None:
        secretsfile.check_path(settings.schedule.secrets_file, uid)
    times = parse_times(args.time, args.scheduler)
    config, python = config.resolve(), Path(sys.executable)
    refusal = refused_user(args.user, needs_of(settings, python))
    if refusal and args.action != "show":
        raise ScheduleError(refusal)
    chosen = cadences_with_checks(config, python)
    times = {cadence: spec for cadence, spec in times.items() if cadence in chosen}
    if args.action == "show":
        show(args, settings, config, python, times)
        if refusal:
            raise ScheduleError(f"install-schedule would refuse it: {refusal}")
        return
    if args.scheduler == "cron":
        text = cron_text(config, python, args.user, times, settings.schedule.log_dir, args.mail_to)
        prepare_log_dir(settings.schedule.log_dir, uid)
        remove_units(args.unit_dir)
        write_file(args.cron_file, text)
        print(f"installed {args.cron_file}:\n{text}", end="")
        return
    units = unit_texts(config, python, args.user, times)
    if args.unit_dir == timers.UNIT_DIR:
        timers.require_systemd()
    prepare_log_dir(settings.schedule.log_dir, uid)
    install_units(args.unit_dir, units)
    remove_cron(args.cron_file)
    print(f"installed in {args.unit_dir}: " + ", ".join(units) + "\n"
          + "".join(f"  {cadence}: OnCalendar={spec}\n" for cadence, spec in times.items()), end="")


def show(args: argparse.Namespace, settings: Settings, config: Path, python: Path, times: dict[Cadence, str]) -> None:
    """What install would write, as it would write it: the cron file, or each unit under a `# NAME` line."""
    if args.scheduler == "cron":
        print(f"# {args.cron_file}")
        print(cron_text(config, python, args.user, times, settings.schedule.log_dir, args.mail_to), end="")
        return
    units = unit_texts(config, python, args.user, times)
    print("\n".join(f"# {args.unit_dir / name}\n{text}" for name, text in units.items()), end="")


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


def mail_address(text: str) -> str:
    """One address (or local user) for cron's MAILTO line."""
    if not MAIL_ADDRESS.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not one mail address (user or user@host)")
    return text


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("install", "uninstall", "show"))
    parser.add_argument("--scheduler", choices=("cron", "systemd"), default="cron")
    parser.add_argument("--cron-file", type=Path, default=CRON_FILE)
    parser.add_argument("--unit-dir", type=Path, default=timers.UNIT_DIR,
                        help="elsewhere than the default, the units are written but not enabled")
    parser.add_argument("--user", default="root", help="who the runs run as")
    parser.add_argument("--time", action="append", default=[], metavar="CADENCE=SPEC",
                        help="another time for a cadence: a cron time, or an OnCalendar= with --scheduler systemd")
    parser.add_argument("--mail-to", type=mail_address, metavar="ADDRESS",
                        help="cron's MAILTO: who gets the sentence of a run that could not check or tell")


def run(call: cli.Call) -> int:
    args = call.args
    verb = {"uninstall": "not removed", "install": "not installed", "show": "show-schedule"}[args.action]
    refusal = needs_root(args) if args.action != "show" else None
    if refusal:
        print(f"{verb}: {refusal}", file=sys.stderr)
        return ExitStatus.BAD_CONFIGURATION
    try:
        if args.action == "uninstall":
            if not (remove_cron(args.cron_file) | remove_units(args.unit_dir)):
                print("no schedule was installed")
            return 0
        if call.config_path is None:
            call.error(f"{args.action} needs --config PATH (the file the scheduled runs will use)")
        # a schedule that would fail every night with a bad file is refused now
        install(args, call.config_path, call.settings(refused=verb))
    except (ScheduleError, secretsfile.SecretsRefused) as error:
        print(f"{verb}: {error}", file=sys.stderr)
        return ExitStatus.BAD_CONFIGURATION
    except OSError as error:  # removing a file of the other scheduler, reading a directory
        print(f"{verb}: {error.filename}: {error.strerror}. Run it as root (sudo make {args.action}-schedule ...), "
              f"or give --cron-file/--unit-dir paths this user may change.", file=sys.stderr)
        return ExitStatus.BAD_CONFIGURATION
    return 0


# Not the secrets file: it is the run user's, read by each run; install checks it for that user (check_path).
VERB = cli.Verb(
    "schedule", "install, show or remove the schedule (make install-schedule, show-schedule, uninstall-schedule)",
    __doc__, arguments, run, config=cli.Config.OPTIONAL, secrets=False)
