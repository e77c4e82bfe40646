"""`make update-os CONFIG=... [APPLY=1] [BOX=name]`: the guide's System Updates 1 (Operating System Updates),
made safe.

    python -m commands osupdate --config PATH [--apply] [--box NAME]

Without --apply (the default) it only prints what it would do: the updates it would install, those held
back ([updates] hold, the kernel: the guide's `apt upgrade --exclude=linux-*`, an option apt-get does not
have), the backup, the daily checks, and whether a reboot would be scheduled. With --apply: a backup of
[updates] backup_kind first (nothing installed if it fails), then `apt-get install --only-upgrade` of
every pending update but the held ones (simulated first: nothing installed if apt would pull a held
package in), then the daily checks (remediation off); then, if the box says a reboot is required
([updates] reboot_required_file), the reboot is SCHEDULED at the maintenance window's next start with
[updates] schedule_reboot (by default a systemd timer), never done at once (the guide's
`./scripts/schedule-reboot.sh`). Every step is a line of the ledger (core/ledger.py).

Node.js (System Updates 2) is the `nodejs` package and is updated by this same path; the guide's
`curl -fsSL https://deb.nodesource.com/setup_lts.x | sudo -E bash -` is not run (add NodeSource's apt
repository once, by hand, with its signed key, if the distribution's Node.js is too old: UPD-006).

Status: 0 done (or planned), 1 a step failed, 4 the configuration does not load.
"""

from __future__ import annotations

import argparse
import getpass
import shlex
import sys
from pathlib import Path

from commands import cli
from configuration import Settings
from core.vocabulary import ActionStatus, LedgerKind, Mode
from decision.state import state_directory
from probes.updates import UpdatesProbe
from remediations import command_as_run
from remediations.runner import ActionContext
from remediations.updates import Install, chosen, daily_checks_argv, install_argv

DONE, STEP_FAILED = 0, 1


def reboot_argv(settings: Settings) -> list[str]:
    calendar = settings.updates.window.calendar()
    return [word.replace("{calendar}", calendar) for word in settings.updates.schedule_reboot]


def _say(settings: Settings, text: str, err: bool = False) -> None:
    print(f"{settings.host.name}: {text}", file=sys.stderr if err else sys.stdout, flush=True)


def _record(settings: Settings, step: str, status: str, detail: str) -> None:
    cli.record_in_ledger(settings, LedgerKind.OS_UPDATE, {"event": "update-os", "box": settings.host.name,
                                                          "who": getpass.getuser(), "step": step, "status": status,
                                                          "detail": detail})


def plan(call: cli.Call, settings: Settings) -> int:
    box = call.box(settings)
    probe = UpdatesProbe(box, settings)
    todo, held = chosen(probe, "all")
    config = settings.updates
    _say(settings, f"plan (nothing is changed; APPLY=1 to do it): {len(todo)} update(s) to install, "
                   f"{len(held)} held back")
    _say(settings, f"[1] would take a {config.backup_kind} backup (take_backup); nothing is installed if it fails")
    for pending in todo:
        _say(settings, f"    install {pending}" + (" [security]" if pending.security else ""))
    for pending in held:
        _say(settings, f"    hold back {pending} ([updates] hold {', '.join(config.hold)})")
    _say(settings, "[2] would run: " + (command_as_run(box, install_argv(probe, [p.name for p in todo])) if todo
                                        else "nothing: no update to install"))
    _say(settings, f"[3] would run the daily checks of {settings.host.name} (its own only, here): "
                   f"{shlex.join(daily_checks_argv(settings))}" if config.daily_checks_after
         else "[3] the daily checks: not run ([updates] daily_checks_after = false)")
    reboot = probe.reboot
    now = ("a reboot is required now, for " + (", ".join(reboot["packages"]) or "unlisted packages")
           if reboot["required"] else "no reboot is required now")
    _say(settings, f"[4] if the box then asks for a reboot ({now}), would schedule it at the window's next start "
                   f"({config.window}): " + " ".join(reboot_argv(settings)))
    return DONE


def apply(call: cli.Call, settings: Settings, state_dir: Path) -> int:
    box = call.box(settings)
    context = ActionContext(settings=settings, box=box, services=call.services(settings), mode=Mode.APPLY,
                            state_dir=state_dir, check="make update-os")
    outcome = Install(context, "all", event="update-os").run()
    _say(settings, f"install: {outcome.status}: {outcome.detail}",
         err=outcome.status not in (ActionStatus.DONE, ActionStatus.SKIPPED))
    if outcome.output:
        print(outcome.output)
    if outcome.status == ActionStatus.FAILED and outcome.exit_status != 0:
        return STEP_FAILED  # nothing installed, or apt failed: no reboot to schedule
    reboot = UpdatesProbe(box, settings).reboot
    if not reboot["required"]:
        _say(settings, "no reboot required")
        _record(settings, "reboot", "not needed", "")
        return DONE if outcome.status == ActionStatus.DONE else STEP_FAILED
    argv = reboot_argv(settings)
    scheduled = box.run(argv, privileged=True, timeout=60)
    packages = ", ".join(reboot["packages"]) or "unlisted packages"
    if scheduled.returncode != 0:
        said = (scheduled.stderr or scheduled.stdout).strip()[-300:]
        _say(settings, f"a reboot is required ({packages}) but scheduling it failed (exit {scheduled.returncode}): "
                       f"{said}; schedule it by hand in the window {settings.updates.window}", err=True)
        _record(settings, "schedule reboot", "failed", f"{' '.join(argv)}: exit {scheduled.returncode}: {said}")
        return STEP_FAILED
    detail = f"reboot for {packages} scheduled at the window's next start ({settings.updates.window}): {' '.join(argv)}"
    _say(settings, detail)
    _record(settings, "schedule reboot", "done", detail)
    return DONE if outcome.status == ActionStatus.DONE else STEP_FAILED


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--apply", action="store_true", help="do it (default: print the plan, change nothing)")


def run(call: cli.Call) -> int:
    box = call.one_box()
    try:
        if not call.args.apply:
            return plan(call, box)
        return apply(call, box, state_directory(box))
    except (OSError, RuntimeError, LookupError) as error:
        _say(box, f"could not read the updates: {error}", err=True)
        return STEP_FAILED


VERB = cli.Verb(
    "osupdate", "the system's package updates, planned or applied (make update-os)",
    __doc__, arguments, run, boxes=cli.Boxes.ONE)
