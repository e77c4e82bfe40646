"""From a failed check to its remediation and back: act, then look again.

The plugin calls `remediate_and_recheck` for a check that failed its assertion. The action runs
through the registry (guarded, dry-run aware, never raising) and the check is run once more in the
same run, so the report says whether the action fixed it.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import testinfra
from filelock import FileLock

from fixtures.host import ServiceProbe
from remediations import DONE, FAILED, SKIPPED, Outcome, load_all
from suite.identity import RemediationSpec

FIXED, STILL_FAILING, NOT_RECHECKED = "fixed", "still failing", "not rechecked"


@dataclass
class ActionContext:
    settings: object
    host: object
    services: object
    mode: str

    def run(self, argv: list[str]) -> subprocess.CompletedProcess:
        """Argument lists only, never a shell string; bounded by the configured timeout."""
        try:
            return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                  timeout=self.settings.remediation.timeout_seconds)
        except subprocess.TimeoutExpired as error:
            return subprocess.CompletedProcess(argv, 124, error.stdout or "", f"timed out after {error.timeout}s")
        except OSError as error:
            return subprocess.CompletedProcess(argv, 127, "", str(error))


@dataclass
class Remedy:
    outcome: Outcome
    recheck: str
    recheck_problem: str = ""


def action_params(item: pytest.Item, spec: RemediationSpec) -> dict:
    """Marker arguments plus the check's own parameters (the service, the rule...) it was run with."""
    params = dict(getattr(getattr(item, "callspec", None), "params", {}))
    params.pop("level", None)
    params.update(spec.params)
    return params


def remediate_and_recheck(item: pytest.Item, spec: RemediationSpec, settings, mode: str, lock_dir: Path) -> Remedy:
    action = load_all().get(spec.name)
    if action is None:
        return Remedy(Outcome(spec.name, FAILED, "no such remediation"), NOT_RECHECKED)
    host = testinfra.get_host(settings.host.backend)  # testinfra caches hosts: the checks' own
    services = ServiceProbe(host, settings.host.service_manager, settings.host.supervisorctl,
                            settings.services.critical())
    context = ActionContext(settings, host, services, mode)
    # One action at a time on the box (xdist workers included), and a last look before acting:
    # two checks of one service must not restart it twice.
    with FileLock(str(lock_dir / "remediation.lock")):
        if mode == "apply" and recheck(item) is None:
            return Remedy(Outcome(spec.name, SKIPPED, "passes now: mended by an earlier action of this run"), FIXED)
        outcome = action(context, **action_params(item, spec))
        if outcome.status != DONE:
            return Remedy(outcome, NOT_RECHECKED)
        time.sleep(settings.remediation.recheck_after_seconds)
        problem = recheck(item)
    return Remedy(outcome, FIXED) if problem is None else Remedy(outcome, STILL_FAILING, problem)


def recheck(item: pytest.Item) -> str | None:
    """Run the check again with the fixtures it already has; None when it passes."""
    for probe in item.funcargs.values():  # probes that keep a reading must read afresh
        if hasattr(probe, "forget"):
            probe.forget()
    try:
        item.runtest()
    except AssertionError as error:
        return first_line(error)
    except Exception as error:  # the probe broke on the second look: say so, do not hide it
        return f"{type(error).__name__}: {first_line(error)}"
    return None


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
