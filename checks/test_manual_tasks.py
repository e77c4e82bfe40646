"""The guide's manual tasks, audited: Manual Weekly 1 and 3, Manual Monthly 1-3, Quarterly 2 (cleaning) and 3
(the security review).

The suite cannot optimise a strategy or clean a fan; it can hold the operator to the guide's rhythm. Each
task of [tasks] is a check of its own cadence that fails when its last attestation (`make attest TASK=...
NOTE=...`) is older than the cadence (7, 31 or 92 days) plus [tasks] grace_days, saying when it was last
done and by whom. Key rotation is KEY-001's (checks/test_quarterly_security_review.py). No remediation:
the task is a human's.
"""

import time

import pytest

from configuration.tasks import CADENCE_DAYS


def assert_done_in_time(tasks, settings, name, record_property):
    __tracebackhide__ = True
    task = settings.tasks.task(name)
    allowed = task.allowed_days(settings.tasks.grace_days)
    last = tasks.last(name)
    fix = f"do it, then: make attest TASK={name} NOTE=\"what was done\" CONFIG=..."
    record_property("last_done", f"{last.date} by {last.who}" if last else "never attested")
    assert last is not None, (f"{name} ({task.guide or task.cadence}): never attested; due every "
                              f"{CADENCE_DAYS[task.cadence]} days: {fix}")
    age = last.age_days(time.time())
    record_property("days_since_done", f"{age:.1f}")
    assert age <= allowed, (f"{name} ({task.guide or task.cadence}) overdue: last done {last.date} by {last.who}, "
                            f"{age:.0f} days ago (note: {last.note}); allowed {allowed:g} days (over by "
                            f"{age - allowed:.0f}): {fix}")


@pytest.mark.weekly
@pytest.mark.check("TASK-001", severity="warning", why="a strategy nobody reviews goes on losing quietly; an "
                   "untended system slows down")
def test_weekly_task_done(tasks, settings, weekly_task, record_property):
    assert_done_in_time(tasks, settings, weekly_task, record_property)


@pytest.mark.monthly
@pytest.mark.check("TASK-002", severity="warning", why="strategies, configuration and documentation drift from "
                   "what the market and the box have become")
def test_monthly_task_done(tasks, settings, monthly_task, record_property):
    assert_done_in_time(tasks, settings, monthly_task, record_property)


@pytest.mark.quarterly
@pytest.mark.check("TASK-003", severity="warning", why="dust and old thermal paste cook the box; an unreviewed "
                   "security posture ages")
def test_quarterly_task_done(tasks, settings, quarterly_task, record_property):
    assert_done_in_time(tasks, settings, quarterly_task, record_property)
