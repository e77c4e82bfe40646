"""The schedule as systemd units: per cadence a oneshot `trading-maintenance-<cadence>.service` and its
`.timer`. `Persistent=true`: a run missed while the box was off happens when it is back.

The secrets file is the service's `EnvironmentFile=`, and the run reads [schedule] secrets_file itself
too, after checking its mode and owner, as under cron: systemd would load a world-readable file without
a word, the run refuses to start with one.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

UNIT_DIR = Path("/etc/systemd/system")
BOOTED = Path("/run/systemd/system")  # exists only while systemd is PID 1 (sd_booted)
PREFIX = "trading-maintenance"
# The run's own findings (README: exit statuses 10-14) are not the unit's failure: `systemctl --failed`
# and a degraded system are kept for a run that could not run (4, 2, 3, 5).
FINDINGS = "10 11 12 13 14"


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


def service(cadence: str, argv: list[str], directory: Path, user: str, path: str, secrets: Path | None = None) -> str:
    return "\n".join([
        "# Written by `make install-schedule SCHEDULER=systemd`; `make uninstall-schedule` removes it.",
        "[Unit]",
        f"Description=Trading box maintenance: the {cadence} checks",
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
        *([f"EnvironmentFile={word(str(secrets))}"] if secrets else []),
        f"ExecStart={' '.join(word(a) for a in argv)}",
        f"SuccessExitStatus={FINDINGS}",
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
