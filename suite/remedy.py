"""From a failed check to its remediation and back: act, then look again.

The plugin calls `remediate_and_recheck` for a check that failed its assertion. The action runs
through the registry (guarded, dry-run aware, never raising) and the check is run once more in the
same run, so the report says whether the action fixed it.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass

import pytest
import testinfra

from fixtures.host import ServiceProbe
from remediations import FAILED, Outcome, load_all
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


def remediate_and_recheck(item: pytest.Item, spec: RemediationSpec, settings, mode: str) -> Remedy:
    action = load_all().get(spec.name)
    if action is None:
        return Remedy(Outcome(spec.name, FAILED, "no such remediation"), NOT_RECHECKED)
    host = testinfra.get_host(settings.host.backend)  # testinfra caches hosts: the checks' own
    services = ServiceProbe(host, settings.host.service_manager, settings.host.supervisorctl)
    context = ActionContext(settings, host, services, mode)
    outcome = action(context, **action_params(item, spec))
    if outcome.status != "done":
        return Remedy(outcome, NOT_RECHECKED)
    time.sleep(settings.remediation.recheck_after_seconds)
    try:
        item.runtest()
    except AssertionError as error:
        return Remedy(outcome, STILL_FAILING, first_line(error))
    except Exception as error:  # the probe broke on the second look: say so, do not hide it
        return Remedy(outcome, STILL_FAILING, f"{type(error).__name__}: {first_line(error)}")
    return Remedy(outcome, FIXED)


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
