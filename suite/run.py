"""The run as a whole, as cron sees it: one run per cadence at a time, a heartbeat, an exit status.

Exit statuses (documented in the README):
  0  every check passed (waived and skipped included)
  10 failures were found and every one was fixed by its remediation
  11 failures remain
  12 some check could not be run (UNKNOWN), no failure remains
  13 another run of the same cadence holds the lock: this one did nothing
  14 some alert could not be delivered and waits in the spool
  4  bad configuration (or a check without its identity): nothing ran
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import requests
from filelock import FileLock, Timeout

ALL_PASSED, ALL_FIXED, FAILURES_REMAIN, COULD_NOT_CHECK, LOCKED_OUT, ALERTS_SPOOLED = 0, 10, 11, 12, 13, 14
log = logging.getLogger(__name__)


def hold_cadence_lock(state_dir: Path, cadence: str) -> FileLock:
    """An overlapping run of the same cadence leaves at once, touching nothing."""
    state_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(state_dir / f"{cadence}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        pytest.exit(f"another {cadence} run holds {lock.lock_file}: this run checks nothing", returncode=LOCKED_OUT)
    return lock


class Tally:
    """Counts verdicts as reports arrive on the controller and turns them into the exit status."""

    def __init__(self, alerter, heartbeat_url: str | None, heartbeat_timeout: float):
        self.failed = self.fixed = self.unknown = 0
        self.findings: list[tuple[str, dict]] = []  # (nodeid, properties) of every check not passed
        self.alerter = alerter
        self.heartbeat_url = heartbeat_url
        self.heartbeat_timeout = heartbeat_timeout
        ping(self.heartbeat_url, "/start", self.heartbeat_timeout)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        properties = dict(report.user_properties)
        verdict = properties.get("verdict") if report.when != "teardown" else None
        if verdict in ("failed", "unknown", "waived"):
            self.findings.append((report.nodeid, properties))
        if verdict == "failed":
            if properties.get("recheck") == "fixed":
                self.fixed += 1
            else:
                self.failed += 1
        elif verdict == "unknown":
            self.unknown += 1

    def status(self) -> int:
        if self.alerter.undelivered:
            return ALERTS_SPOOLED
        if self.failed:
            return FAILURES_REMAIN
        if self.unknown:
            return COULD_NOT_CHECK
        return ALL_FIXED if self.fixed else ALL_PASSED

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            session.exitstatus = self.status()
        healthy = session.exitstatus in (ALL_PASSED, ALL_FIXED)
        ping(self.heartbeat_url, "" if healthy else "/fail", self.heartbeat_timeout)


def ping(url: str | None, suffix: str, timeout: float) -> None:
    """healthchecks.io's convention; a heartbeat that cannot be sent must never break the run."""
    if not url:
        return
    try:
        requests.post(url.rstrip("/") + suffix, timeout=timeout)
    except requests.RequestException as error:
        log.warning("heartbeat%s not sent: %s", suffix, type(error).__name__)  # the URL is a secret
