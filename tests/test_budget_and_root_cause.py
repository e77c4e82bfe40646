"""One budget per thing touched, and the root cause named once: pytester projects whose checks share
one "program" (a file that says it is dead), no lab. tests/test_policy.py pins the budget's rules;
the lab tests (test_unattended.py, test_daily_lab.py) show the same with the real SVC-001 and WEB-001.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from conftest import ROOT, read_alerts

T0 = 1_800_000_000.0
DAY = 86400.0

CONFTEST = '''
import os
import pytest
from core.vocabulary import ActionStatus
from remediations import Outcome, remediation

pytest_plugins = ["plugin"]
STATE = os.environ["PROGRAM_DIR"]

def _revive(ctx, program):
    with open(os.path.join(STATE, "actions"), "a") as actions:
        actions.write(program + "\\n")
    if os.path.exists(os.path.join(STATE, "crashloop")):
        return Outcome("revive", ActionStatus.FAILED, f"{program} died again at once", 1)
    os.remove(os.path.join(STATE, "dead"))
    return Outcome("revive", ActionStatus.DONE, f"revived {program}")

remediation("revive", touches="one program", plan=lambda ctx, program: f"revive {program}",
            target=lambda ctx, program: f"program {program}")(_revive)
'''

# The summary flags of the suite's own pytest.ini: without -rN, pytest's short summary repeats every
# message after the maintenance summary, in full where it believes it runs under CI ($CI set).
INI = """
[pytest]
addopts = --strict-markers -p no:cacheprovider -rN --tb=no
junit_family = xunit1
markers =
    daily: d
    weekly: w
    monthly: m
    quarterly: q
    emergency: e
    check(id, severity, why, depends_on): identity
    remediate(name): remediation
"""

# The program's root check, and a check of what the program serves. The page's file sorts first, so
# that collection order alone would let it look (and act) first.
PAGE = '''
import os, time, pytest
@pytest.mark.daily
@pytest.mark.check("X-WEB", severity="warning", why="the page is how the operator sees", {depends})
@pytest.mark.remediate("revive", program="dash")
def test_page_answers():
    assert not os.path.exists(os.path.join(os.environ["PROGRAM_DIR"], "dead")), "page of dash does not answer"
'''
PROGRAM = '''
import os, time, pytest
from core.unread import CouldNotRead
from core.vocabulary import Unread
@pytest.mark.daily
@pytest.mark.check("X-SVC", severity="critical", why="a dead program serves nothing")
@pytest.mark.remediate("revive", program="dash")
def test_program_runs():
    time.sleep({delay})
    if os.path.exists(os.path.join(os.environ["PROGRAM_DIR"], "manager-silent")):
        raise CouldNotRead(Unread.TIMEOUT, "the state of dash", "its manager did not answer")
    assert not os.path.exists(os.path.join(os.environ["PROGRAM_DIR"], "dead")), "program dash is dead"
'''


@pytest.fixture
def box(pytester, tmp_path, monkeypatch):
    """A pytester project with the maintenance plugin, a program that can die, and a clock to set."""
    program = tmp_path / "program"
    program.mkdir()
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("PROGRAM_DIR", str(program))
    config = tmp_path / "maintenance.toml"
    config.write_text(f'[remediation]\nmode = "apply"\nrecheck_after_seconds = 0\n'
                      f'[reports]\ndir = "{tmp_path}/reports"\n[policy]\nstate_dir = "{tmp_path}/state"\n'
                      f'[policy.budget]\nmax_remediations = 3\n'
                      f'[alerts]\nfile = "{tmp_path}/alerts.jsonl"\nspool_dir = "{tmp_path}/spool"\n')
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    pytester.program, pytester.config_path, pytester.reports = program, config, tmp_path / "reports"
    pytester.alerts, pytester.env = tmp_path / "alerts.jsonl", monkeypatch
    return pytester


def checks(box, *, depends: bool = True, delay: float = 0) -> None:
    box.makepyfile(test_a_page=PAGE.replace("{depends}", 'depends_on="X-SVC"' if depends else ""),
                   test_b_program=PROGRAM.replace("{delay}", str(delay)))


def kill(box, crashloop: bool = False) -> None:
    (box.program / "dead").touch()
    if crashloop:
        (box.program / "crashloop").touch()


def run_at(box, when: float, *args: str):
    """One daily run at `when` on the suite's clock: its result, and each check's report properties."""
    box.env.setenv("MAINTENANCE_CLOCK", str(when))
    before = set(box.reports.glob("*.xml")) if box.reports.exists() else set()
    result = box.runpytest_subprocess(f"--maintenance-config={box.config_path}", "-m", "daily", *args)
    xml = (set(box.reports.glob("*.xml")) - before).pop()
    result.properties = {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
                         for case in ET.parse(xml).getroot().iter("testcase")}
    return result


def actions(box) -> int:
    path = box.program / "actions"
    return len(path.read_text().splitlines()) if path.exists() else 0


def human_needed(box) -> list[dict]:
    return [alert for alert in read_alerts(box.alerts) if alert["kind"] == "human-needed"]


# -- finding 11: one budget per thing touched


def test_two_checks_of_one_program_share_its_budget_and_ask_for_a_human_once(box):
    """First contact, finding 11: SVC-001 and WEB-001 both restart the dashboard: 6 restarts of one
    program within a minute against a budget of 3, and two "human needed" alerts for one broken program."""
    checks(box, depends=False)
    kill(box, crashloop=True)
    runs = [run_at(box, T0 + minute * 60) for minute in range(4)]
    assert actions(box) == 3
    alerts = human_needed(box)
    assert len(alerts) == 1, alerts
    assert "budget for trading-box program dash spent: 3 remediation(s) in the last 5 daily runs" in alerts[0]["message"]
    assert 'make clear-budget TARGET="trading-box program dash"' in alerts[0]["message"]
    last = runs[-1].properties
    assert all("budget for trading-box program dash spent" in last[name]["policy"]
               for name in ("test_page_answers", "test_program_runs"))


def test_a_daily_crash_loop_trips_the_budget_sized_to_the_cadence(box):
    """First contact, finding 11: with the guide's daily schedule a 60-minute window never holds 3 runs:
    5 daily runs of a crash-looping program gave 10 restarts and no "human needed" at all."""
    checks(box)
    kill(box, crashloop=True)
    for day in range(5):
        run_at(box, T0 + day * DAY)
    assert actions(box) == 3
    assert len(human_needed(box)) == 1


def test_a_cleared_budget_lets_the_program_be_acted_on_again(box):
    import subprocess
    import sys

    checks(box)
    kill(box, crashloop=True)
    for day in range(4):
        run_at(box, T0 + day * DAY)
    assert actions(box) == 3
    cleared = subprocess.run([sys.executable, "-m", "commands", "budget", "clear", "--target", "program dash",
                              "--config", str(box.config_path)], cwd=ROOT, capture_output=True, text=True)
    assert "trading-box program dash" in cleared.stdout, cleared.stdout + cleared.stderr
    run_at(box, T0 + 4 * DAY)
    assert actions(box) == 4


# -- finding 12: the root cause does not depend on test order


def test_a_dead_program_is_found_by_its_root_check_and_the_dependent_passes(box):
    """First contact, finding 12: a dead dashboard came through only as WEB-001 (warning), which restarted
    it before SVC-001 (critical) looked; the critical finding vanished."""
    checks(box)
    kill(box)
    result = run_at(box, T0)
    program, page = result.properties["test_program_runs"], result.properties["test_page_answers"]
    assert (program["verdict"], program["recheck"]) == ("fixed", "fixed")
    assert page["verdict"] == "passed" and "remediation_outcome" not in page
    assert actions(box) == 1
    assert [(a["check_id"], a["severity"]) for a in read_alerts(box.alerts)] == [("X-SVC", "critical")]


def test_a_dependent_names_the_root_cause_and_neither_acts_nor_alerts(box):
    checks(box)
    kill(box, crashloop=True)
    result = run_at(box, T0)
    program, page = result.properties["test_program_runs"], result.properties["test_page_answers"]
    assert program["verdict"] == "failed" and program["recheck"] == "not rechecked"
    assert page["verdict"] == "failed" and page["caused_by"] == "X-SVC"
    assert "remediation_outcome" not in page
    assert actions(box) == 1
    assert {a["check_id"] for a in read_alerts(box.alerts)} == {"X-SVC"}
    result.stdout.fnmatch_lines(["  FAILED   X-WEB *test_page_answers: caused by X-SVC*"])
    assert "page of dash does not answer" not in result.stdout.str().split("maintenance summary")[1]


def test_a_dependent_of_a_root_that_could_not_be_read_waits_on_it_and_acts_on_nothing(box):
    """Issue 18, item 11: the service manager did not answer, SVC-001 was UNKNOWN, and WEB-001, NET-001, API-001
    and DB-001 each tried restart_service through that same manager."""
    checks(box)
    kill(box)
    (box.program / "manager-silent").touch()
    result = run_at(box, T0)
    program, page = result.properties["test_program_runs"], result.properties["test_page_answers"]
    assert program["verdict"] == "unknown" and "its manager did not answer" in program["problem"]
    assert page["verdict"] == "unknown" and page["caused_by"] == "X-SVC"
    assert page["policy"] == "waits on its root X-SVC, which could not be read: nothing acted on here"
    assert "remediation_outcome" not in page and actions(box) == 0
    assert [(a["check_id"], a["kind"]) for a in read_alerts(box.alerts)] == [("X-SVC", "unknown")]
    result.stdout.fnmatch_lines(["  UNKNOWN  X-WEB *test_page_answers: waits on its root X-SVC*"])
    assert result.ret == 12


def test_a_dependent_of_a_waived_root_is_waived_with_it(box):
    """The operator accepted the dead program: what looks through it is no failure of its own either."""
    checks(box)
    kill(box)
    box.config_path.write_text(box.config_path.read_text() + '[[waivers]]\ncheck = "X-SVC"\n'
                               'reason = "dash is being retired"\nexpires = 2099-01-01\n')
    result = run_at(box, T0)
    program, page = result.properties["test_program_runs"], result.properties["test_page_answers"]
    assert program["verdict"] == page["verdict"] == "waived"
    assert page["caused_by"] == "X-SVC" and page["policy"] == "waived with its root X-SVC"
    assert actions(box) == 0 and read_alerts(box.alerts) == [] and result.ret == 0


@pytest.mark.parametrize("crashloop", [False, True], ids=["root-fixes", "root-cannot-fix"])
def test_on_parallel_workers_the_dependent_waits_for_its_root(box, crashloop):
    """-n 2: the dependent (on the other worker) fails first and waits for the root's outcome of this run."""
    checks(box, delay=1)
    kill(box, crashloop=crashloop)
    result = run_at(box, T0, "-n", "2")
    program, page = result.properties["test_program_runs"], result.properties["test_page_answers"]
    assert program["verdict"] == ("failed" if crashloop else "fixed") and actions(box) == 1
    if crashloop:
        assert page["caused_by"] == "X-SVC" and "remediation_outcome" not in page
    else:
        assert program["recheck"] == "fixed"
        assert page["verdict"] == "passed" or page["remediation_outcome"] == (
            "revive: skipped: passes now: mended by revive for test_program_runs earlier in this run")


def test_the_guides_daily_checks_run_the_service_checks_first(tmp_path):
    """WEB-001, NET-001 and API-001 look through a service: SVC-001 looks first, the rest keep file order."""
    import subprocess
    import sys

    from configuration.schema import EXAMPLE

    config, text = tmp_path / "maintenance.toml", EXAMPLE.read_text()
    here = text.replace('state_dir = "/var/lib/trading-maintenance"', f'state_dir = "{tmp_path}/state"')
    assert here != text, "the example's state_dir moved: this test must not write to the machine's /var/lib"
    here = here.replace('user = "trading"', 'user = "nobody"')  # the guide's agent user is not on this machine
    config.write_text(here)
    listed = subprocess.run([sys.executable, "-m", "pytest", "-m", "daily", "--collect-only", "-q",
                             f"--maintenance-config={config}", f"--reports-dir={tmp_path}/reports"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120).stdout.splitlines()
    names = [line.split("::")[-1] for line in listed if "::" in line]
    services = [name for name in names if name.startswith("test_service_is_running")]
    assert names[:len(services)] == services and len(services) == 4, names
    dependents = ["test_dashboard_accessible", "test_ssh_tunnel_accepts_connections", "test_agent_api_answers"]
    assert [name for name in names if name in dependents] == dependents
    assert names.index("test_dashboard_accessible") == len(services)


def test_checks_that_depend_on_each_other_in_a_circle_are_refused(box):
    box.makepyfile('''
        import pytest
        @pytest.mark.daily
        @pytest.mark.check("X-A", severity="info", why="w", depends_on="X-B")
        def test_a(): pass
        @pytest.mark.daily
        @pytest.mark.check("X-B", severity="info", why="w", depends_on="X-A")
        def test_b(): pass
    ''')
    result = box.runpytest_subprocess(f"--maintenance-config={box.config_path}", "-m", "daily")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*checks depend on each other in a circle: X-A -> X-B, X-B -> X-A*"])


def test_a_fix_is_credited_only_to_an_action_of_the_same_run(box):
    """A run that starts right after another (cron's emergency and daily runs, say) does not credit its
    recoveries to the other run's actions."""
    checks(box)
    box.makepyfile(test_c_flaky='''
        import os, pytest
        @pytest.mark.daily
        @pytest.mark.check("X-FLAKY", severity="warning", why="w")
        @pytest.mark.remediate("revive", program="dash")
        def test_flaky():
            looks = os.path.join(os.environ["PROGRAM_DIR"], "looks")
            with open(looks, "a") as seen:
                seen.write("x")
            assert len(open(looks).read()) > 1, "down at the first look"
    ''')
    kill(box)
    assert run_at(box, T0, "-k", "program_runs").properties["test_program_runs"]["recheck"] == "fixed"
    outcome = run_at(box, T0 + 1, "-k", "flaky").properties["test_flaky"]["remediation_outcome"]
    assert outcome == "revive: skipped: passes now: it recovered by itself, nothing acted on it"
