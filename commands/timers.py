"""The schedule as systemd units: per cadence a oneshot `trading-maintenance-<cadence>.service` and its
`.timer`. `Persistent=true`: a run missed while the box was off happens when it is back.

The service waits for the network (`Wants=` and `After=network-online.target`: `After=` alone orders, it does not
pull the target in, so on a machine where nothing else wants it the run would start before the network).

No `EnvironmentFile=`: the run reads [schedule] secrets_file itself, after checking its mode and owner
(configuration/secretsfile.py), and its values never enter an environment; systemd would load a
world-readable file without a word.

Which exit statuses are the unit's success: the run's findings that were handled and told (10 all fixed,
11 failures remain and were alerted, 13 another run of the cadence was still at work). A run that could not
check a box (12) or could not deliver an alert (14) fails the unit, as does one that could not run at all (2-5):
then nobody may have been told, and a failed unit is what `systemctl --failed`, a degraded system state and
any monitoring of units show without the suite's help. Failing the unit was chosen over an `OnFailure=` unit of
our own: that unit would need a way to tell somebody, and the suite's own channels are what just failed; an
operator who has one adds `OnFailure=` in a drop-in.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from core.vocabulary import ExitStatus

UNIT_DIR = Path("/etc/systemd/system")
BOOTED = Path("/run/systemd/system")  # exists only while systemd is PID 1 (sd_booted)
PREFIX = "trading-maintenance"
# The statuses besides 0 that are the unit's success (see above); cron's line treats them alike (commands/schedule.py).
SUCCESS = (ExitStatus.ALL_FIXED, ExitStatus.FAILURES_REMAIN, ExitStatus.LOCKED_OUT)


class ScheduleError(Exception):
    """The schedule could not be installed or removed; one line naming what and how to fix it."""


def names(cadence: str) -> tuple[str, str]:
    return f"{PREFIX}-{cadence}.service", f"{PREFIX}-{cadence}.timer"


def word(text: str) -> str:
    """One argument of an Exec line: specifiers and variables escaped, quoted when it has a space."""
    if any(c in text for c in "\n\r"):
        raise ScheduleError(f"{text!r} has a line break, which a unit file cannot hold")
    text = text.replace("%", "%%").replace("$", "$$")
    if text and not any(c in text for c in " \t;\"'\\"):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def service(cadence: str, argv: list[str], directory: Path, user: str, path: str) -> str:
    return "\n".join([
        "# Written by `make install-schedule SCHEDULER=systemd`; `make uninstall-schedule` removes it.",
        "[Unit]",
        f"Description=Trading box maintenance: the {cadence} checks",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        f"User={user}",
        # The suite's directory on the module path, not as WorkingDirectory=: systemd makes a working
        # directory require the mount units of its path (a checkout under /tmp would need tmp.mount).
        # commands.run starts the checks in that directory itself.
        f"Environment=PYTHONPATH={word(str(directory))}",
        f"Environment=PATH={path}",
        f"ExecStart={' '.join(word(a) for a in argv)}",
        f"SuccessExitStatus={' '.join(str(int(status)) for status in SUCCESS)}",
        "TimeoutStartSec=1h",  # a hung run ends; the next one can start
        "",
    ])


def timer(cadence: str, calendar: str) -> str:
    return "\n".join([
        "# Written by `make install-schedule SCHEDULER=systemd`; `make uninstall-schedule` removes it.",
        "[Unit]",
        f"Description=Trading box maintenance: the {cadence} checks at {calendar}",
        "",
        "[Timer]",
        f"OnCalendar={calendar}",
        "Persistent=true",
        "AccuracySec=1s",  # systemd would otherwise fire within a minute of the time: too coarse for 30 s looks
        f"Unit={names(cadence)[0]}",
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
    ])


def check_calendar(calendar: str) -> None:
    """A calendar systemd would reject is refused now, not found missing at 02:00."""
    if "\n" in calendar:
        raise ScheduleError(f"OnCalendar {calendar!r} has a line break")
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return
    checked = subprocess.run([analyze, "calendar", calendar], capture_output=True, text=True, timeout=30)
    if checked.returncode != 0:
        detail = (checked.stderr.strip().splitlines() or ["rejected"])[-1]
        raise ScheduleError(f"OnCalendar {calendar!r}: {detail} (see man systemd.time)")


def installed(directory: Path) -> list[str]:
    """This suite's units in `directory` (every cadence's, whatever installed them)."""
    return sorted(path.name for path in directory.glob(f"{PREFIX}-*.*") if path.suffix in (".service", ".timer"))


def require_systemd() -> None:
    """Before a unit is written: timers that no systemd will ever start are no schedule."""
    if not BOOTED.is_dir():
        raise ScheduleError(f"this machine is not running systemd (no {BOOTED}): install with SCHEDULER=cron")


def systemctl(*args: str) -> None:
    try:
        done = subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise ScheduleError("systemctl is not installed: this machine has no systemd; use SCHEDULER=cron") from None
    if done.returncode != 0:
        detail = " ".join((done.stderr or done.stdout).split()) or f"exit status {done.returncode}"
        raise ScheduleError(f"systemctl {' '.join(args)} failed: {detail}")
