"""Installing package updates: the security ones (UPD-001, weekly) or every one but the held (UPD-005,
quarterly; [updates] hold, the kernel: the guide's `apt upgrade --exclude=linux-*`, an option apt-get
does not have).

Off unless [updates] install = true, and then only inside [updates] window (the box's local time).
A backup of [updates] backup_kind is taken first (take_backup, with its guard and checks): a backup that
fails means nothing is installed. The install itself is `apt-get install --only-upgrade` of exactly the
packages chosen, under the suite's APT_CONFIG, non-interactive, keeping changed configuration files, and
is simulated first: if apt would pull a held package in, nothing is installed. Then the daily checks of
the same box run (`python -m pytest -m daily --maintenance-box NAME`, remediation off: in a fleet, that box's
alone) and the outcome says whether they passed. Every install is a line of the ledger (core/ledger.py) in
the run's reports directory. Installing needs root on the box (no sudo rule is printed: the package names
change with every run).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from filelock import Timeout

from configuration import Settings
from core import ledger
from core.vocabulary import ActionStatus, ExitStatus, LedgerKind
from probes.updates import Pending, UpdatesProbe, parse_simulation
from remediations import Outcome, command_as_run, load_all, remediation

SCOPES = ("security", "all")
SUITE = Path(__file__).resolve().parent.parent
DPKG_KEEP_CONFIG = ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]


def chosen(probe: UpdatesProbe, scope: str) -> tuple[list[Pending], list[Pending]]:
    """(to install, held back): the security updates, or every pending update, less [updates] hold."""
    wanted = probe.security if scope == "security" else probe.pending
    return [p for p in wanted if not probe.held(p)], [p for p in wanted if probe.held(p)]


def install_argv(probe: UpdatesProbe, names: list[str], simulate: bool = False) -> list[str]:
    config = probe.config
    return probe.apt_argv(["DEBIAN_FRONTEND=noninteractive", config.apt_get, "-y", "-q", *DPKG_KEEP_CONFIG,
                           *(["-s", "-o", "Debug::NoLocking=true"] if simulate else []),
                           "install", "--only-upgrade", *names])


def box_moment(box) -> tuple[int, str]:
    """The box's local weekday (0 = Monday) and HH:MM."""
    done = box.run(["date", "+%u %H:%M"], timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"the box's time could not be read: {done.stderr.strip()[:200]}")
    day, hh_mm = done.stdout.split()
    return int(day) - 1, hh_mm


def outside_window(settings: Settings, box) -> str | None:
    window = settings.updates.window
    weekday, hh_mm = box_moment(box)
    if window.holds(weekday, hh_mm):
        return None
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[weekday]
    return f"outside the maintenance window {window}, not installed (it is {day} {hh_mm} on the box)"


def _names(pending: list[Pending], limit: int = 20) -> str:
    shown = ", ".join(str(p) for p in pending[:limit])
    return shown + (f", ... ({len(pending) - limit} more)" if len(pending) > limit else "") if pending else "nothing"


def _guard(ctx, scope: str) -> str | None:
    if scope not in SCOPES:
        return f"no scope {scope!r}; scopes: {', '.join(SCOPES)}"
    config = ctx.settings.updates
    if not config.install:
        todo, _ = chosen(UpdatesProbe(ctx.box, ctx.settings), scope)
        return f"installing updates is off ([updates] install = false); it would install {_names(todo)}"
    return outside_window(ctx.settings, ctx.box)


def _plan(ctx, scope: str) -> str:
    probe = UpdatesProbe(ctx.box, ctx.settings)
    todo, held = chosen(probe, scope)
    steps = [f"take a {ctx.settings.updates.backup_kind} backup (take_backup; nothing installed if it fails)",
             f"install {len(todo)} {'security ' if scope == 'security' else ''}update(s): {_names(todo)}: "
             + command_as_run(ctx.box, install_argv(probe, [p.name for p in todo]))]
    if held:
        steps.append(f"hold back {', '.join(p.name for p in held)} ([updates] hold)")
    if ctx.settings.updates.daily_checks_after:
        steps.append("run the daily checks")
    return "; ".join(steps)


def daily_checks(settings: Settings) -> tuple[bool, str]:
    """The daily cadence of this box (`settings`: the box's), remediation off (they only look): (passed, what it
    said). Its own checks only: in a fleet, another box's finding is no verdict on this install."""
    if settings.source is None:
        return False, "not run: the configuration has no file to give them"
    argv = daily_checks_argv(settings)
    try:
        done = subprocess.run(argv, cwd=SUITE, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=settings.updates.daily_checks_timeout_seconds)
    except subprocess.TimeoutExpired:
        return False, f"the daily checks did not finish within {settings.updates.daily_checks_timeout_seconds:g}s"
    try:
        status = ExitStatus(done.returncode).name.lower().replace("_", " ")
    except ValueError:
        status = "pytest's own failure"
    passed = done.returncode in (ExitStatus.ALL_PASSED, ExitStatus.ALL_FIXED)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return passed, f"the daily checks after it: {'passed' if passed else 'NOT passed'} (exit {done.returncode}, " \
                   f"{status}){': ' + lines[-1].strip()[:300] if lines and not passed else ''}"


def daily_checks_argv(settings: Settings) -> list[str]:
    return [sys.executable, "-m", "pytest", "-m", "daily", f"--maintenance-config={settings.source}",
            f"--maintenance-box={settings.host.name}", "--remediation=off", "-q", "-p", "no:cacheprovider"]


class Install:
    """One install: backup, simulate, install, daily checks; what it did, in order, for the outcome."""

    def __init__(self, ctx, scope: str, event: str = ""):
        self.ctx, self.scope = ctx, scope
        self.event = event or f"install-updates-{scope}"
        self.config = ctx.settings.updates
        self.probe = UpdatesProbe(ctx.box, ctx.settings)
        self.said: list[str] = []

    def backup(self) -> Outcome:
        return load_all()["take_backup"](self.ctx, backup_kind=self.config.backup_kind)

    def pulled_in_held(self, names: list[str]) -> list[str]:
        """Held packages apt would install along with `names` (a dependency of one of them)."""
        done = self.ctx.box.run(install_argv(self.probe, names, simulate=True), timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"apt-get -s install failed (exit {done.returncode}): "
                               f"{(done.stderr or done.stdout).strip()[-300:]}")
        return [entry["name"] for entry in parse_simulation(done.stdout) if self.probe.held(entry["name"])]

    def record(self, status: str, detail: str) -> str:
        """The install's line in the ledger of the run's reports (--reports-dir or [reports] dir); "" once
        written, else why not, for the outcome: what was installed stands, so nothing is raised."""
        reports = getattr(self.ctx, "reports_dir", None) or SUITE / self.ctx.settings.reports.dir
        try:
            ledger.append(reports, LedgerKind.OS_UPDATE, {"event": self.event, "box": self.ctx.settings.host.name,
                                                          "check": getattr(self.ctx, "check", ""), "status": status,
                                                          "detail": detail})
        except (OSError, Timeout, ledger.LedgerError) as error:
            return f" (not recorded in the ledger of {reports}: {error})"
        return ""

    def run(self) -> Outcome:
        todo, held = chosen(self.probe, self.scope)
        if not todo:
            return Outcome("install_updates", ActionStatus.DONE, "nothing to install")
        names = [p.name for p in todo]
        pulled = self.pulled_in_held(names)
        if pulled:
            return self.outcome(ActionStatus.FAILED, f"not installed: apt would also install {', '.join(pulled)}, "
                                f"held by [updates] hold; install them by hand in a planned reboot window")
        backup = self.backup()
        self.said.append(f"backup: {backup.summary()}")
        if backup.status != ActionStatus.DONE:
            return self.outcome(ActionStatus.FAILED, f"the backup before it failed, nothing installed: {backup.detail}")
        argv = install_argv(self.probe, names)
        done = self.ctx.box.run(argv, privileged=True, timeout=self.config.install_timeout_seconds)
        self.said.append((done.stdout or "").strip()[-1500:] + (done.stderr or "").strip()[-500:])
        if done.returncode != 0:
            return self.outcome(ActionStatus.FAILED, f"apt-get install failed (exit {done.returncode}) after the "
                                f"backup; {len(names)} package(s) asked: {', '.join(names)}", done.returncode)
        detail = f"installed {_names(todo)} after the backup ({backup.detail})"
        if held:
            detail += f"; held back {', '.join(p.name for p in held)}"
        if not self.config.daily_checks_after:
            return self.outcome(ActionStatus.DONE, detail + "; the daily checks were not run ([updates] "
                                "daily_checks_after = false)", 0)
        passed, said = daily_checks(self.ctx.settings)
        return self.outcome(ActionStatus.DONE if passed else ActionStatus.FAILED, f"{detail}; {said}", 0)

    def outcome(self, status: ActionStatus, detail: str, exit_status: int | None = None) -> Outcome:
        detail += self.record(str(status), detail)
        return Outcome("install_updates", status, detail, exit_status, output="\n".join(self.said).strip())


@remediation("install_updates", touches="the box's packages (apt-get install --only-upgrade), after a backup",
             plan=_plan, guard=_guard, target=lambda ctx, scope: "packages")
def install_updates(ctx, scope: str) -> Outcome:
    return Install(ctx, scope).run()
