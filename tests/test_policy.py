"""The policy's rules on their own: pure functions over a remembered record, in microseconds.

The end-to-end tests (test_unattended.py) show the same rules through real runs against the lab;
these pin each rule's edges without a lab, a file or a clock.
"""

from __future__ import annotations

import pytest

from core.vocabulary import AlertKind, Cadence, Verdict
from decision.policy import (
    Budget,
    Rules,
    consecutive_bad,
    count_remediation,
    judge,
    notification,
    spend_budget,
    state_changes,
)
from decision.state import CheckRecord, StateStore, TargetRecord

HOUR = 3600.0
PASSED, FAILED, UNKNOWN = Verdict.PASSED, Verdict.FAILED, Verdict.UNKNOWN


def run(record: CheckRecord, verdict: Verdict, now: float, rules: Rules, *, fixed: bool = False):
    """One run of one check, as the glue strings it: judge, then decide the alert."""
    judgement = judge(record, verdict, now, rules)
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
    rules, record = Rules(repeat_interval_seconds=4 * HOUR), CheckRecord()
    alerts = [run(record, FAILED, hour * HOUR, rules)[1] for hour in range(9)]
    assert alerts == [AlertKind.PROBLEM, None, None, None, AlertKind.PROBLEM, None, None, None, AlertKind.PROBLEM]


def test_a_change_from_problem_to_unknown_is_told_at_once():
    rules, record = Rules(), CheckRecord()
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
    rules, record = Rules(flap_window=6, flap_changes=4), CheckRecord()
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
    rules = Rules(flap_window=4, flap_changes=3, repeat_interval_seconds=100 * HOUR)
    record = CheckRecord()
    for n, verdict in enumerate([FAILED, PASSED, FAILED, PASSED]):
        run(record, verdict, n, rules)
    assert record.flapping
    alerts = [run(record, FAILED, 10 + n, rules) for n in range(3)]
    ended = [n for n, (judgement, _) in enumerate(alerts) if judgement.flap_ended]
    assert ended and alerts[ended[0]][1] == AlertKind.PROBLEM


# -- the remediation budget: one per target, whichever check acts on it

DAY = 24 * HOUR
TARGET = "nuc-1 service trading-dashboard"


def act(record: TargetRecord, check: str, now: float, budget: Budget):
    """One check about to act on the target, as the runner does it: ask the budget, count what ran."""
    decision = spend_budget(record, TARGET, check, now, budget)
    if decision.may_act:
        count_remediation(record, now, check)
    return decision


def test_every_check_acting_on_one_target_spends_one_budget_and_a_human_is_asked_for_once():
    budget, record = Budget(max_remediations=3), TargetRecord()
    decisions = [act(record, check, n * 10, budget) for n in range(3) for check in ("SVC-001[trading-dashboard]",
                                                                                    "WEB-001")]
    assert [d.may_act for d in decisions] == [True, True, True, False, False, False]
    assert [d.human_needed for d in decisions] == [False, False, False, True, False, False]
    assert decisions[3].note == (f"budget for {TARGET} spent: 3 remediation(s) in the last 5 daily runs (5 days) by "
                                 f"SVC-001[trading-dashboard], WEB-001; a human is needed "
                                 f'(make clear-budget TARGET="{TARGET}" CONFIG=...)')
    assert "waiting for an operator" in decisions[4].note and record.spent_by == "WEB-001"


@pytest.mark.parametrize(("cadence", "period"), [(Cadence.DAILY, DAY), (Cadence.WEEKLY, 7 * DAY),
                                                 (Cadence.EMERGENCY, 5 * 60)])
def test_the_window_is_counted_in_runs_of_the_acting_checks_cadence(cadence, period):
    """One remediation per run of a crash-looping service: the 4th run asks for a human, whatever the cadence."""
    budget, record = Budget(max_remediations=3, window_runs=5, cadence=cadence), TargetRecord()
    decisions = [act(record, "SVC-001", n * period, budget) for n in range(5)]
    assert [d.may_act for d in decisions] == [True, True, True, False, False]
    assert [d.human_needed for d in decisions] == [False, False, False, True, False]


def test_remediations_older_than_the_window_do_not_count():
    budget, record = Budget(max_remediations=2, window_runs=2), TargetRecord()
    for day in range(6):  # one every other day: never two within 2 daily runs
        assert act(record, "SVC-001", day * 2 * DAY, budget).may_act


def test_an_emergency_checks_window_does_not_reach_back_to_yesterdays_daily_remediations():
    record = TargetRecord()
    for n in range(3):
        act(record, "SVC-001", n * 60, Budget(cadence=Cadence.DAILY))
    assert act(record, "EMG-001", DAY, Budget(cadence=Cadence.EMERGENCY)).may_act
    assert not act(record, "SVC-001", DAY + 60, Budget(cadence=Cadence.DAILY)).may_act


def test_a_budget_of_zero_asks_for_a_human_at_the_first_failure():
    decision = act(TargetRecord(), "SVC-001", 0, Budget(max_remediations=0))
    assert not decision.may_act and decision.human_needed


def test_a_spent_budget_stays_spent_until_an_operator_clears_it_by_target_or_by_check(tmp_path):
    store, budget = StateStore(tmp_path), Budget(max_remediations=1)
    for target in (TARGET, "nuc-2 service trading-dashboard", "nuc-1 directory /tmp"):
        for now in (0, 60):
            with store.target(target) as record:
                decision = spend_budget(record, target, "SVC-001[x]" if "service" in target else "LOG-002", now, budget)
                if decision.may_act:
                    count_remediation(record, now, "SVC-001[x]" if "service" in target else "LOG-002")
    with store.target(TARGET) as record:
        assert not spend_budget(record, TARGET, "WEB-001", 100 * DAY, budget).may_act  # time alone clears nothing
    assert store.clear_budget(target="nuc-1 service") == [TARGET]
    assert store.clear_budget("LOG-002") == ["nuc-1 directory /tmp"]
    assert store.clear_budget() == ["nuc-2 service trading-dashboard"]
    assert all(record.spent_at is None and not record.remediations for record in store.load_targets().values())


def test_a_state_file_of_per_check_budgets_still_loads(tmp_path):
    (tmp_path / "state.json").write_text('{"checks": {"WEB-001": {"verdicts": [[0, "failed"]], "remediations": [0],'
                                         ' "budget_spent_at": 5, "notified_kind": "problem"}}}')
    record = StateStore(tmp_path).read("WEB-001")
    assert record.recent(1) == ["failed"] and record.notified_kind == "problem"


@pytest.mark.parametrize("verdict", [PASSED, Verdict.SKIPPED])
def test_a_good_verdict_asks_for_nothing(verdict):
    judgement, alert = run(CheckRecord(), verdict, 0, Rules())
    assert not (judgement.hard or judgement.may_remediate) and alert is None
