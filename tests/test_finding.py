"""One finding (decision/finding.py): each stage on its own, with no pytest item, no lab and no box; the finding's
way across processes (written once to the report's properties, read back once on the controller) as a round
trip; targets named from the settings alone. The pytester projects of test_plugin.py and
test_budget_and_root_cause.py show the same stages strung by plugin/flow.py.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from configuration import load
from configuration.schema import Silence, Waiver
from core.unread import CouldNotRead
from core.vocabulary import ActionStatus, AlertKind, ExitStatus, Prop, Recheck, Unread, Verdict
from decision import exemptions, policy, verdict
from decision.finding import Action, Finding, Reading, finding_from, properties_of
from decision.policy import Rules
from decision.rootcause import blame_root, root_outcome
from decision.state import CheckRecord, StateStore
from remediations import Outcome, target_of
from remediations.runner import Remedy
from reports.tally import Tally

T0 = 1_800_000_000.0  # 2027-01-15
HOUR = 3600.0
READING = Reading("SVC-001", "nuc-1", "SVC-001[trading-dashboard]", {"service": "trading-dashboard"})


def finding(verdict_: Verdict = Verdict.FAILED, **fields) -> Finding:
    return Finding(READING, verdict_, **fields)


def carried(found: Finding) -> list[tuple[str, str]]:
    """The finding as xdist and JUnit carry it: plain strings, after the identity's written at collection."""
    identity = [(Prop.CHECK_ID, found.reading.check), (Prop.CADENCE, "daily"), (Prop.SEVERITY, "critical"),
                (Prop.WHY, "a stopped service stops trading"), (Prop.REMEDIATION, "restart_service"),
                (Prop.BOX, found.reading.box), ("uptime_s", "12")]
    return [(str(name), str(value)) for name, value in [*identity, *properties_of(found)]]


# -- across processes: written once, read back once


AS_SENT = [
    Finding(Reading("SVC-001", "nuc-1"), Verdict.PASSED),
    Finding(Reading("SVC-001", "nuc-1"), Verdict.FIXED, problem="trading-dashboard is inactive",
            policy=["soft failure 1 of 1: no action yet"], alert=AlertKind.FIXED,
            action=Action("restart_service: done: restarted trading-dashboard", Recheck.FIXED)),
    Finding(Reading("EMG-007", "nuc-2"), Verdict.FAILED, problem="the agent is dead", unreachable=True,
            policy=["waiver expired on 2026-01-01: counts as a failure again", "flapping (4 changes in the last 6 runs)"],
            action=Action("emergency_response: failed (exit 1): close refused", Recheck.NOT_RECHECKED,
                          "could not look again", at_risk="2 open positions"), alert=AlertKind.PROBLEM),
    Finding(Reading("WEB-001", "nuc-1"), Verdict.UNKNOWN, problem="page of dash does not answer",
            caused_by="SVC-001[trading-dashboard]",
            policy=["waits on its root SVC-001[trading-dashboard], which could not be read: nothing acted on here"]),
    Finding(Reading("SVC-001", "nuc-1"), Verdict.FAILED, problem="down",
            policy=["budget for nuc-1 service x spent: a human is needed"],
            human_needed="budget for nuc-1 service x spent: a human is needed"),
]


@pytest.mark.parametrize("sent", AS_SENT, ids=["passed", "fixed", "at-risk", "caused-by", "human-needed"])
def test_a_finding_read_back_from_its_report_properties_is_the_finding_that_was_written(sent):
    assert finding_from(carried(sent)) == sent


def test_the_verdict_is_written_once_as_plain_strings_and_every_policy_note_in_order():
    written = properties_of(finding(policy=["first", "second"], alert=AlertKind.PROBLEM))
    assert [name for name, _ in written].count(Prop.VERDICT) == 1
    assert all(type(value) is str for _, value in written)
    assert [value for name, value in written if name == Prop.POLICY] == ["first", "second"]


def test_what_the_stages_need_on_the_worker_does_not_travel():
    """The state's key and the check's parameters stay with the stages; the controller needs neither."""
    back = finding_from(carried(finding(problem="down")))
    assert back.reading == Reading("SVC-001", "nuc-1")
    assert (back.verdict, back.problem) == (Verdict.FAILED, "down")


def test_a_report_without_a_verdict_carries_no_finding_and_a_dict_keeps_the_last_note():
    assert finding_from([(Prop.CHECK_ID, "SVC-001"), (Prop.BOX, "nuc-1")]) is None
    assert finding_from(dict(carried(finding(policy=["first", "second"])))).policy == ["second"]


def test_the_tally_counts_the_verdicts_it_reads_back_into_the_exit_status():
    tally = Tally()
    for number, sent in enumerate([*AS_SENT, finding(Verdict.WAIVED)]):
        tally.observe(f"test_{number}", dict(carried(sent)))
    tally.observe("test_setup", {Prop.CHECK_ID: "X-001"})  # no verdict: not counted
    assert tally.overview() == "6 checks: 1 passed, 1 fixed, 2 failed, 1 unknown, 1 waived"
    assert [nodeid for nodeid, _ in tally.findings(Verdict.FAILED)] == ["test_2", "test_4"]
    assert tally.status(alerts_undelivered=False) == ExitStatus.FAILURES_REMAIN


# -- the verdict: the check's result, shown on a box that answers


class StandInBox:
    """A box that answers, or stopped answering (and was marked unreachable for the run)."""

    def __init__(self, gone: bool):
        self.gone = CouldNotRead(Unread.TRANSPORT, "the box", "connection refused", box="nuc-1") if gone else None

    def answers(self) -> None:
        if self.gone:
            raise self.gone

    def unreachable(self) -> CouldNotRead | None:
        return self.gone


def test_a_failed_assertion_on_a_box_that_answers_is_a_failure_with_its_first_line():
    found = verdict.read(READING, False, False, True, AssertionError("dashboard is inactive\nmore"), StandInBox(False))
    assert (found.verdict, found.problem, found.unreachable) == (Verdict.FAILED, "dashboard is inactive", False)


def test_a_failed_assertion_on_a_box_that_stopped_answering_is_unknown_with_the_boxs_reason():
    found = verdict.read(READING, False, False, True, AssertionError("database does not answer"), StandInBox(True))
    assert found.verdict == Verdict.UNKNOWN and found.unreachable
    assert found.problem == "could not read the box on box nuc-1: connection failed (connection refused)"


def test_a_pass_on_a_box_marked_unreachable_is_no_part_of_the_boxs_alert():
    found = verdict.read(READING, True, False, True, None, StandInBox(True))
    assert (found.verdict, found.unreachable) == (Verdict.PASSED, False)


# -- waivers and silences


def waiver(expires: datetime.date, match: str = "") -> Waiver:
    return Waiver(check="SVC-001", match=match, reason="dashboard being retired", expires=expires)


def test_an_active_waiver_waives_a_bad_verdict_and_says_until_when_and_why():
    found = finding()
    assert exemptions.waive(found, [waiver(datetime.date(2099, 1, 1), match="dashboard")], T0)
    assert found.verdict == Verdict.WAIVED
    assert found.policy == ["waived until 2099-01-01: dashboard being retired"]


def test_an_expired_waiver_counts_as_a_failure_again_and_says_so():
    found = finding()
    assert not exemptions.waive(found, [waiver(datetime.date(2020, 1, 1))], T0)
    assert found.verdict == Verdict.FAILED
    assert found.policy == ["waiver expired on 2020-01-01: counts as a failure again"]


def test_a_pass_is_never_waived_nor_a_waiver_of_another_instance_used():
    passed, other = finding(Verdict.PASSED), finding()
    assert not exemptions.waive(passed, [waiver(datetime.date(2099, 1, 1))], T0)
    assert not exemptions.waive(other, [waiver(datetime.date(2099, 1, 1), match="trading-agent")], T0)
    assert passed.policy == other.policy == [] and other.verdict == Verdict.FAILED


def test_a_silence_holds_the_alert_back_while_it_lasts_and_says_so():
    silence = Silence(check="SVC-001", reason="dashboard upgrade", until=datetime.datetime(2099, 1, 1, 18, 0))
    held, over = finding(alert=AlertKind.PROBLEM), finding(alert=AlertKind.PROBLEM)
    exemptions.silence(held, [silence], T0)
    exemptions.silence(over, [silence.model_copy(update={"until": datetime.datetime(2020, 1, 1)})], T0)
    assert held.alert is None and held.policy == ["alert silenced until 2099-01-01 18:00:00: dashboard upgrade"]
    assert over.alert == AlertKind.PROBLEM and over.policy == []


# -- the root cause


def settled(tmp_path: Path, run: str, **results: Verdict) -> StateStore:
    store = StateStore(tmp_path / "state")
    for key, result in results.items():
        store.settle(key, run, result)
    return store


def test_a_root_that_failed_in_this_run_is_the_cause_and_one_of_another_run_is_not(tmp_path):
    store = settled(tmp_path, "run-1", **{"SVC-001": Verdict.PASSED, "SVC-002": Verdict.FAILED})
    assert root_outcome(store, ["SVC-001", "SVC-002"], "run-1", patience=0) == ("SVC-002", Verdict.FAILED)
    assert root_outcome(store, ["SVC-001", "SVC-002"], "run-2", patience=0) is None
    assert root_outcome(store, ["SVC-001"], "run-1", patience=0) is None


@pytest.mark.parametrize(("root", "becomes", "note"), [
    (Verdict.FAILED, Verdict.FAILED, []),
    (Verdict.WAIVED, Verdict.WAIVED, ["waived with its root SVC-001"]),
    (Verdict.UNKNOWN, Verdict.UNKNOWN, ["waits on its root SVC-001, which could not be read: nothing acted on here"]),
])
def test_a_dependent_points_at_its_root_and_takes_a_waived_or_unread_roots_verdict(root, becomes, note):
    found = finding()
    blame_root(found, ("SVC-001", root))
    assert (found.caused_by, found.verdict, found.policy) == ("SVC-001", becomes, note)


# -- the policy and the alert owed


def test_a_soft_failure_says_so_and_may_not_be_acted_on():
    found, record = finding(), CheckRecord()
    judgement = policy.weigh(found, record, T0, Rules(failures_before_action=2))
    assert not judgement.may_remediate and found.policy == ["soft failure 1 of 2: no action yet"]
    policy.owe_alert(found, record, judgement, T0, Rules(failures_before_action=2))
    assert found.alert is None


def test_a_fix_is_told_as_fixed_and_a_routine_fix_tells_nobody_and_says_so():
    for tell_fixed, alert, notes in [(True, AlertKind.FIXED, []), (False, None, [policy.ROUTINE_FIX])]:
        found, record = finding(), CheckRecord()
        judgement = policy.weigh(found, record, T0, Rules())
        found.verdict = Verdict.FIXED
        policy.owe_alert(found, record, judgement, T0, Rules(), tell_fixed=tell_fixed)
        assert (found.alert, found.policy) == (alert, notes)


def test_a_hard_failure_owes_a_problem_once_within_the_repeat_interval():
    record, alerts = CheckRecord(), []
    for hour in range(3):
        found = finding()
        judgement = policy.weigh(found, record, T0 + hour * HOUR, Rules())
        policy.owe_alert(found, record, judgement, T0 + hour * HOUR, Rules())
        alerts.append(found.alert)
    assert alerts == [AlertKind.PROBLEM, None, None]


# -- the action and its re-check


def test_an_action_that_fixed_it_makes_the_finding_fixed_with_its_record():
    found = finding()
    Remedy(Outcome("restart_service", ActionStatus.DONE, "restarted"), Recheck.FIXED).fill(found)
    assert found.verdict == Verdict.FIXED
    assert found.action == Action("restart_service: done: restarted", Recheck.FIXED)


def test_an_action_that_did_not_fix_it_leaves_it_failed_with_what_is_still_wrong_and_what_is_at_risk():
    found = finding()
    Remedy(Outcome("emergency_response", ActionStatus.FAILED, "close refused", 1, at_risk="2 open positions"),
           Recheck.NOT_RECHECKED, "could not look again").fill(found)
    assert found.verdict == Verdict.FAILED
    assert found.action == Action("emergency_response: failed (exit 1): close refused", Recheck.NOT_RECHECKED,
                                  "could not look again", "2 open positions")


def test_a_spent_budget_is_a_note_and_the_one_human_needed_not_an_action():
    found, note = finding(), "budget for nuc-1 service trading-dashboard spent: a human is needed"
    Remedy(Outcome("restart_service", ActionStatus.SKIPPED, "not run"), Recheck.NOT_RECHECKED, budget_spent=note,
           human_needed=True).fill(found)
    assert (found.action, found.policy, found.human_needed, found.verdict) == (None, [note], note, Verdict.FAILED)


# -- targets: named from the settings and the parameters alone


@pytest.fixture
def settings(tmp_path):
    config = tmp_path / "maintenance.toml"
    config.write_text(f'[host]\nname = "nuc-1"\n[policy]\nstate_dir = "{tmp_path}/state"\n'
                      f'[alerts]\nfile = "{tmp_path}/alerts.jsonl"\nspool_dir = "{tmp_path}/spool"\n')
    return load(config)


def test_a_target_is_named_from_the_settings_and_parameters_with_nothing_built(settings):
    """No box, service manager or database connection is made to name what an action would touch: the
    dependent's root cause, the budget and the runner ask the same function."""
    services, database = settings.services, settings.database.dbname
    assert target_of("restart_service", {"service": "trading-dashboard"}, settings) == \
        "nuc-1 service trading-dashboard"
    assert target_of("restart_service", {"role": "dashboard"}, settings) == f"nuc-1 service {services.dashboard}"
    assert target_of("emergency_response", {"kind": "agent-down", "target": "api"}, settings) == \
        f"nuc-1 service {services.agent}"
    assert target_of("emergency_response", {"kind": "drawdown"}, settings) == "nuc-1 trading"
    assert target_of("vacuum_analyze", {"table": "trades"}, settings) == f"nuc-1 database {database} table trades"
    assert target_of("run_diagnostic", {"name": "disk"}, settings) == "nuc-1 run_diagnostic name=disk"
