"""The policy's rules on their own: pure functions over a remembered record, in microseconds.

The end-to-end tests (test_unattended.py) show the same rules through real runs against the lab;
these pin each rule's edges without a lab, a file or a clock.
"""

from __future__ import annotations

import pytest

from core.vocabulary import AlertKind, Verdict
from decision.policy import Rules, consecutive_bad, count_remediation, judge, notification, state_changes
from decision.state import CheckRecord

HOUR = 3600.0
PASSED, FAILED, UNKNOWN = Verdict.PASSED, Verdict.FAILED, Verdict.UNKNOWN


def run(record: CheckRecord, verdict: Verdict, now: float, rules: Rules, *, fixed: bool = False, act: bool = True):
    """One run of one check, as the glue strings it: judge, maybe remediate, then decide the alert."""
    judgement = judge(record, verdict, now, rules)
    if judgement.may_remediate and act:
        count_remediation(record, now)
    return judgement, notification(record, verdict, fixed, judgement, now, rules)


# -- soft and hard states


def test_a_failure_is_soft_until_it_repeats_the_configured_number_of_times():
    rules, record = Rules(failures_before_action=3), CheckRecord()
    for n in (1, 2):
        judgement, alert = run(record, FAILED, n * HOUR, rules)
        assert not judgement.hard and not judgement.may_remediate and alert is None
        assert judgement.note == f"soft failure {n} of 3: no action yet"
    judgement, alert = run(record, FAILED, 3 * HOUR, rules)
    assert judgement.hard and judgement.may_remediate and alert == AlertKind.PROBLEM


def test_a_pass_between_failures_starts_the_count_again():
    rules, record = Rules(failures_before_action=2), CheckRecord()
    run(record, FAILED, 0, rules)
    run(record, PASSED, 1, rules)
    judgement, _ = run(record, FAILED, 2, rules)
    assert not judgement.hard and consecutive_bad(record) == 1


def test_unknown_counts_towards_hard_but_is_never_remediated():
    rules, record = Rules(), CheckRecord()
    judgement, alert = run(record, UNKNOWN, 0, rules)
    assert judgement.hard and not judgement.may_remediate
    assert alert == AlertKind.UNKNOWN


# -- alerts: dedup, repeat interval, resolved


def test_a_problem_is_alerted_once_then_again_after_the_repeat_interval():
    rules, record = Rules(repeat_interval_seconds=4 * HOUR, max_remediations=100), CheckRecord()
    alerts = [run(record, FAILED, hour * HOUR, rules)[1] for hour in range(9)]
    assert alerts == [AlertKind.PROBLEM, None, None, None, AlertKind.PROBLEM, None, None, None, AlertKind.PROBLEM]


def test_a_change_from_problem_to_unknown_is_told_at_once():
    rules, record = Rules(max_remediations=100), CheckRecord()
    assert run(record, FAILED, 0, rules)[1] == AlertKind.PROBLEM
    assert run(record, UNKNOWN, 60, rules)[1] == AlertKind.UNKNOWN


def test_resolved_is_sent_once_and_only_after_an_alert():
    rules, record = Rules(), CheckRecord()
    assert run(record, PASSED, 0, rules)[1] is None  # nothing was ever told: nothing to resolve
    run(record, FAILED, 60, rules)
    assert run(record, PASSED, 120, rules)[1] == AlertKind.RESOLVED
    assert run(record, PASSED, 180, rules)[1] is None


def test_a_fixed_finding_is_told_and_leaves_nothing_open():
    rules, record = Rules(), CheckRecord()
    _, alert = run(record, FAILED, 0, rules, fixed=True)
    assert alert == AlertKind.FIXED and record.notified_kind is None
    assert run(record, PASSED, 60, rules)[1] is None  # no "resolved" for what was already mended


def test_routine_maintenance_that_did_its_job_tells_nobody():
    rules, record = Rules(), CheckRecord()
    judgement = judge(record, FAILED, 0, rules)
    assert notification(record, FAILED, True, judgement, 0, rules, tell_fixed=False) is None
    assert notification(record, PASSED, False, judge(record, PASSED, 60, rules), 60, rules) is None


# -- flapping


def test_flapping_is_told_once_and_neither_acted_on_nor_alerted_while_it_lasts():
    rules, record = Rules(flap_window=6, flap_changes=4, max_remediations=100), CheckRecord()
    outcomes = [run(record, verdict, n, rules) for n, verdict in enumerate([FAILED, PASSED, FAILED, PASSED, FAILED])]
    started = [n for n, (judgement, _) in enumerate(outcomes) if judgement.flap_started]
    assert started == [4] and outcomes[4][1] == AlertKind.FLAPPING
    judgement, alert = run(record, PASSED, 5, rules)
    assert judgement.flapping and alert is None
    judgement, alert = run(record, FAILED, 6, rules)
    assert judgement.flapping and not judgement.may_remediate and alert is None


def test_state_changes_count_transitions_between_good_and_bad():
    assert state_changes([PASSED, FAILED, UNKNOWN, PASSED]) == 2
    assert state_changes([FAILED] * 5) == 0


def test_when_flapping_ends_a_standing_problem_is_told_again():
    rules = Rules(flap_window=4, flap_changes=3, max_remediations=100, repeat_interval_seconds=100 * HOUR)
    record = CheckRecord()
    for n, verdict in enumerate([FAILED, PASSED, FAILED, PASSED]):
        run(record, verdict, n, rules)
    assert record.flapping
    alerts = [run(record, FAILED, 10 + n, rules) for n in range(3)]
    ended = [n for n, (judgement, _) in enumerate(alerts) if judgement.flap_ended]
    assert ended and alerts[ended[0]][1] == AlertKind.PROBLEM


# -- the remediation budget


def test_the_budget_allows_max_remediations_in_the_window_then_asks_for_a_human_once():
    rules, record = Rules(max_remediations=3, budget_window_seconds=HOUR, repeat_interval_seconds=100 * HOUR), CheckRecord()
    judgements = [run(record, FAILED, n * 60, rules)[0] for n in range(6)]
    assert [j.may_remediate for j in judgements] == [True, True, True, False, False, False]
    assert [j.human_needed for j in judgements] == [False, False, False, True, False, False]
    assert record.budget_spent_at == 180
    assert "make clear-budget" in judgements[4].note


def test_remediations_older_than_the_window_do_not_count():
    rules, record = Rules(max_remediations=2, budget_window_seconds=HOUR), CheckRecord()
    for n in range(4):
        judgement, _ = run(record, FAILED, n * HOUR, rules)  # one an hour: never two in one window
        assert judgement.may_remediate and not judgement.human_needed


def test_a_spent_budget_stays_spent_after_the_check_passes_until_an_operator_clears_it():
    rules, record = Rules(max_remediations=1, budget_window_seconds=HOUR), CheckRecord()
    run(record, FAILED, 0, rules)
    assert run(record, FAILED, 60, rules)[0].human_needed
    run(record, PASSED, 120, rules)
    judgement, _ = run(record, FAILED, 10 * HOUR, rules)
    assert not judgement.may_remediate and record.budget_spent_at == 60


@pytest.mark.parametrize("verdict", [PASSED, Verdict.SKIPPED])
def test_a_good_verdict_asks_for_nothing(verdict):
    judgement, alert = run(CheckRecord(), verdict, 0, Rules())
    assert not (judgement.hard or judgement.may_remediate or judgement.human_needed) and alert is None
