"""The glue plugin, tested as pytest plugins are: with pytester, on small checks written for the test."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from conftest import ROOT, read_alerts

CONFTEST = '''
import pytest
from core.vocabulary import ActionStatus
from remediations import Outcome, remediation

pytest_plugins = ["plugin"]

def _touch(ctx, path):
    open(path, "w").close()
    return Outcome("touch", ActionStatus.DONE, f"created {path}")

remediation("touch", touches="one file", plan=lambda ctx, path: f"create {path}")(_touch)

def _explode(ctx):
    raise RuntimeError("the action broke")

remediation("explode", touches="nothing", plan=lambda ctx: "explode")(_explode)
'''

INI = """
[pytest]
addopts = --strict-markers -p no:cacheprovider
empty_parameter_set_mark = fail_at_collect
junit_family = xunit1
markers =
    daily: d
    weekly: w
    monthly: m
    quarterly: q
    emergency: e
    check(id, severity, why): identity
    remediate(name): remediation
"""


@pytest.fixture
def suite(pytester, tmp_path, monkeypatch):
    """A pytester project with the maintenance plugin and a valid configuration."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    config = tmp_path / "maintenance.toml"
    config.write_text(f'[remediation]\nmode = "apply"\nrecheck_after_seconds = 0\n'
                      f'[reports]\ndir = "{tmp_path}/reports"\n[policy]\nstate_dir = "{tmp_path}/state"\n'
                      f'[alerts]\nfile = "{tmp_path}/alerts.jsonl"\nspool_dir = "{tmp_path}/spool"\n')
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    pytester.config_path = config
    pytester.alerts = tmp_path / "alerts.jsonl"
    pytester.reports = tmp_path / "reports"
    return pytester


def run(suite, *args):
    return suite.runpytest_subprocess(f"--maintenance-config={suite.config_path}", *args)


def junit_properties(suite) -> dict[str, dict]:
    xml = next(suite.reports.glob("*.xml"))
    return {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
            for case in ET.parse(xml).getroot().iter("testcase")}


def test_check_without_cadence_is_refused_at_collection(suite):
    suite.makepyfile('''
        import pytest
        @pytest.mark.check("X-001", severity="warning", why="w")
        def test_orphan(): pass
    ''')
    result = run(suite)
    result.stderr.fnmatch_lines(["*test_orphan: needs exactly one cadence marker*found none*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "Traceback" not in result.stderr.str()


def test_check_without_id_is_refused_at_collection(suite):
    suite.makepyfile('''
        import pytest
        @pytest.mark.daily
        def test_anonymous(): pass
    ''')
    result = run(suite)
    result.stderr.fnmatch_lines(["*test_anonymous: has no id*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_one_id_on_two_checks_is_refused(suite):
    suite.makepyfile('''
        import pytest
        @pytest.mark.daily
        @pytest.mark.check("X-001", severity="warning", why="w")
        def test_one(): pass
        @pytest.mark.daily
        @pytest.mark.check("X-001", severity="warning", why="w")
        def test_two(): pass
    ''')
    result = run(suite)
    result.stderr.fnmatch_lines(["*check id X-001 is used by both*test_one and*test_two*"])


def test_unknown_remediation_is_refused_at_collection(suite):
    suite.makepyfile('''
        import pytest
        @pytest.mark.daily
        @pytest.mark.check("X-001", severity="warning", why="w")
        @pytest.mark.remediate("reboot_the_world")
        def test_typo(): pass
    ''')
    result = run(suite)
    result.stderr.fnmatch_lines(["*test_typo: remediate('reboot_the_world') names no registered remediation*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_empty_parameter_list_fails_at_collection(suite):
    suite.makepyfile('''
        import pytest
        @pytest.mark.daily
        @pytest.mark.check("X-001", severity="warning", why="w")
        @pytest.mark.parametrize("service", [])
        def test_nothing(service): pass
    ''')
    result = run(suite)
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*Empty parameter set*"])


def test_severity_follows_the_level_parameter(suite):
    suite.makepyfile('''
        import pytest
        @pytest.mark.daily
        @pytest.mark.check("X-001", why="w")
        @pytest.mark.parametrize("level", ["warning", "critical"])
        def test_levels(level): pass
    ''')
    assert run(suite).ret == 0
    properties = junit_properties(suite)
    assert properties["test_levels[warning]"]["severity"] == "warning"
    assert properties["test_levels[critical]"]["severity"] == "critical"


FIXABLE = '''
    import os, pytest
    MARKER = {marker!r}
    @pytest.mark.daily
    @pytest.mark.check("X-001", severity="critical", why="without the marker the day is lost")
    @pytest.mark.remediate("touch", path=MARKER)
    def test_marker_exists():
        assert os.path.exists(MARKER), f"{{MARKER}} is missing"
'''


def test_failed_check_is_remediated_rechecked_alerted_and_reported(suite, tmp_path):
    marker = tmp_path / "marker"
    suite.makepyfile(FIXABLE.format(marker=str(marker)))
    result = run(suite, "-m", "daily")
    assert result.parseoutcomes() == {"fixed": 1}  # pytest's own count says the operator's verdict
    assert marker.exists()
    properties = junit_properties(suite)["test_marker_exists"]
    assert properties["check_id"] == "X-001" and properties["cadence"] == "daily"
    assert properties["verdict"] == "fixed"
    assert properties["remediation_outcome"].startswith("touch: done")
    assert properties["recheck"] == "fixed"
    assert properties["why"] == "without the marker the day is lost"
    alert = read_alerts(suite.alerts)[0]
    assert alert["check_id"] == "X-001" and alert["kind"] == "fixed"
    assert alert["message"].startswith("was wrong, now fixed:") and "is missing" in alert["message"]
    assert alert["why"] == "without the marker the day is lost"
    html = next(suite.reports.glob("daily-*.html")).read_text()
    assert "X-001" in html and "touch: done" in html and "why it matters: without the marker the day is lost" in html
    result.stdout.fnmatch_lines(["*maintenance summary*", "*X-001*critical*is missing*", "HTML report: *daily-*.html"])


def test_plan_mode_reports_what_would_run_and_changes_nothing(suite, tmp_path):
    marker = tmp_path / "marker"
    suite.makepyfile(FIXABLE.format(marker=str(marker)))
    run(suite, "--remediation=plan").assert_outcomes(failed=1)
    assert not marker.exists()
    properties = junit_properties(suite)["test_marker_exists"]
    assert properties["remediation_outcome"] == f"touch: planned: would create {marker}"
    xml = next(suite.reports.glob("*.xml")).read_text()
    assert '<property name="remediation_mode" value="plan"' in xml
    assert "Remediation mode" in next(suite.reports.glob("*-2???????-*.html")).read_text()
    assert properties["recheck"] == "not rechecked"


def test_off_mode_runs_no_remediation(suite, tmp_path):
    marker = tmp_path / "marker"
    suite.makepyfile(FIXABLE.format(marker=str(marker)))
    run(suite, "--remediation=off").assert_outcomes(failed=1)
    assert not marker.exists()
    assert "remediation_outcome" not in junit_properties(suite)["test_marker_exists"]


def test_remediation_that_raises_is_recorded_and_the_run_goes_on(suite):
    suite.makepyfile('''
        import pytest
        @pytest.mark.daily
        @pytest.mark.check("X-001", severity="warning", why="w")
        @pytest.mark.remediate("explode")
        def test_broken(): assert False, "broken"
        @pytest.mark.daily
        @pytest.mark.check("X-002", severity="warning", why="w")
        def test_after(): pass
    ''')
    run(suite).assert_outcomes(failed=1, passed=1)
    properties = junit_properties(suite)["test_broken"]
    assert properties["remediation_outcome"] == "explode: failed: RuntimeError: the action broke"


def test_a_probe_that_breaks_is_unknown_and_not_remediated(suite, tmp_path):
    marker = tmp_path / "marker"
    suite.makepyfile(f'''
        import pytest
        @pytest.fixture
        def probe():
            raise ConnectionError("API unreachable")
        @pytest.mark.daily
        @pytest.mark.check("X-001", severity="critical", why="w")
        @pytest.mark.remediate("touch", path={str(marker)!r})
        def test_reading(probe): pass
        @pytest.mark.daily
        @pytest.mark.check("X-002", severity="warning", why="w")
        @pytest.mark.remediate("touch", path={str(marker)!r})
        def test_reading_breaks():
            raise KeyError("errorRate")
    ''')
    assert run(suite).parseoutcomes() == {"unknown": 2}
    assert not marker.exists()
    properties = junit_properties(suite)
    assert properties["test_reading"]["verdict"] == "unknown"
    assert "could not check: ConnectionError: API unreachable" in properties["test_reading"]["problem"]
    assert properties["test_reading_breaks"]["verdict"] == "unknown"
    assert [a["kind"] for a in read_alerts(suite.alerts)] == ["unknown", "unknown"]


def test_reports_are_named_by_cadence_and_never_overwritten(suite):
    suite.makepyfile('''
        import pytest
        @pytest.mark.daily
        @pytest.mark.check("X-001", severity="info", why="w")
        def test_ok(): pass
    ''')
    run(suite, "-m", "daily")
    result = run(suite, "-m", "daily")
    html = sorted(suite.reports.glob("daily-*.html"))
    xml = sorted(suite.reports.glob("daily-*.xml"))
    assert len(html) == 2 and len(xml) == 2
    # No partials; beside the reports, the ledger (core/ledger.py) with both runs' lines and the trail's pages.
    left = sorted(p.name for p in suite.reports.iterdir() if p not in html + xml)
    assert not [name for name in left if name.endswith(".partial")], left
    assert {"ledger.jsonl", "index.html", "trends.html", "history"} <= set(left), left
    assert len((suite.reports / "ledger.jsonl").read_text().splitlines()) == 2
    result.stdout.fnmatch_lines([f"*Generated html report: {html[-1].as_uri()}*"])


def test_header_names_config_cadence_and_mode(suite):
    suite.makepyfile('''
        import pytest
        @pytest.mark.daily
        @pytest.mark.check("X-001", severity="info", why="w")
        def test_ok(): pass
    ''')
    result = run(suite, "-m", "daily", "--remediation=plan")
    result.stdout.fnmatch_lines([f"maintenance: config {suite.config_path}, cadence daily, remediation mode plan"])


def test_report_names_sort_in_the_order_the_runs_happened():
    """Within one second and across seconds: the newest report sorts last by name."""
    import datetime

    from reports.files import report_stem

    start = datetime.datetime(2026, 11, 26, 2, 0, 0, 998000)
    times = [start + datetime.timedelta(milliseconds=n) for n in range(0, 25, 1)]
    names = [f"{report_stem('daily', t)}.html" for t in times]
    assert sorted(names) == names and len(set(names)) == len(names)


def test_the_html_report_is_written_to_a_partial_file_then_renamed(suite):
    """pytest-html writes its file at the very end of the session: by then the suite must still be
    pointing it at the hidden partial file, so a run killed mid-write leaves no truncated report."""
    seen = suite.path / "seen-at-write"
    suite.makepyfile(f'''
        import pytest
        @pytest.mark.daily
        @pytest.mark.check("X-001", severity="info", why="w")
        def test_ok(): pass

        def pytest_html_results_summary(prefix, summary, postfix, session):
            # pytest-html calls this hook right before it writes the report file
            path = next(p._report_path for p in session.config.pluginmanager.get_plugins()
                        if hasattr(p, "_report_path"))
            open({str(seen)!r}, "w").write(str(path))
    ''')
    result = run(suite, "-m", "daily", "-p", "test_the_html_report_is_written_to_a_partial_file_then_renamed")
    written_to = seen.read_text()
    final = next(suite.reports.glob("daily-*.html"))
    assert written_to.endswith(".partial") and written_to == str(final.with_name(f".{final.name}.partial"))
    assert not list(suite.reports.glob(".*.partial"))
    result.stdout.fnmatch_lines([f"*Generated html report: {final.as_uri()}*"])


def test_temporaries_of_a_run_killed_mid_write_are_removed_by_the_next_run(suite, tmp_path):
    """First contact, finding 14: a half-written `.state.json.*.tmp` (or report partial) stays for ever."""
    import os
    import time

    state = tmp_path / "state"
    state.mkdir()
    stale, fresh = state / ".state.json.x1y2.tmp", state / ".state.json.a1b2.tmp"
    stale.write_text('{"checks": {')  # what a killed writer leaves
    fresh.write_text("{")  # a writer of another run, still at work
    os.utime(stale, (time.time() - 7200,) * 2)
    suite.reports.mkdir()
    partial = suite.reports / ".daily-20261126-020000-000.html.partial"
    partial.write_text("<html>")
    os.utime(partial, (time.time() - 7200,) * 2)
    suite.makepyfile('''
        import pytest
        @pytest.mark.daily
        @pytest.mark.check("X-001", severity="info", why="w")
        def test_ok(): pass
    ''')
    assert run(suite, "-m", "daily").ret == 0
    assert not stale.exists() and fresh.exists() and not partial.exists()


def test_a_check_that_passes_on_the_last_look_is_credited_to_nothing_when_nothing_acted(suite, tmp_path):
    """First contact, finding 13: "mended by an earlier action of this run" when nothing had acted."""
    counter, marker = tmp_path / "looks", tmp_path / "marker"
    suite.makepyfile(f'''
        import pytest
        @pytest.mark.daily
        @pytest.mark.check("X-001", severity="warning", why="w")
        @pytest.mark.remediate("touch", path={str(marker)!r})
        def test_flaky_service():
            with open({str(counter)!r}, "a") as looks:
                looks.write("x")
            assert len(open({str(counter)!r}).read()) > 1, "down at the first look"
    ''')
    run(suite, "-m", "daily")
    outcome = junit_properties(suite)["test_flaky_service"]["remediation_outcome"]
    assert outcome == "touch: skipped: passes now: it recovered by itself, nothing acted on it"
    assert not marker.exists()


def test_a_fix_is_credited_to_the_action_that_made_it(suite, tmp_path):
    """Two checks of one thing: the second, down at its first look, finds it mended at its last look;
    the credit goes to the first check's action on the same target, not to "recovered by itself"."""
    marker, counter = tmp_path / "marker", tmp_path / "looks"
    suite.makepyfile(f'''
        import os, pytest
        MARKER = {str(marker)!r}
        @pytest.mark.daily
        @pytest.mark.check("X-001", severity="warning", why="w")
        @pytest.mark.remediate("touch", path=MARKER)
        def test_first():
            assert os.path.exists(MARKER), "missing"

        @pytest.mark.daily
        @pytest.mark.check("X-002", severity="warning", why="w")
        @pytest.mark.remediate("touch", path=MARKER)
        def test_second():
            with open({str(counter)!r}, "a") as looks:
                looks.write("x")
            assert len(open({str(counter)!r}).read()) > 1, "down at its first look"
    ''')
    run(suite, "-m", "daily")
    properties = junit_properties(suite)
    assert properties["test_first"]["remediation_outcome"].startswith("touch: done")
    assert properties["test_second"]["remediation_outcome"] == (
        "touch: skipped: passes now: mended by touch for test_first earlier in this run")


def test_an_empty_selection_says_so_and_writes_no_report(suite):
    """First contact, finding 2: `make weekly` selected nothing, said "every check passed" and wrote a report."""
    suite.makepyfile('''
        import pytest
        @pytest.mark.daily
        @pytest.mark.check("X-001", severity="info", why="w")
        def test_ok(): pass
    ''')
    result = run(suite, "-m", "weekly")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["no checks for cadence weekly: nothing was checked and no report written*"])
    assert "every check passed" not in result.stdout.str()
    assert not suite.reports.exists() or list(suite.reports.iterdir()) == []


def test_a_check_file_that_cannot_be_collected_is_never_every_check_passed(suite):
    suite.makepyfile(test_broken="import no_such_module\n", test_fine='''
        import pytest
        @pytest.mark.daily
        @pytest.mark.check("X-001", severity="info", why="w")
        def test_ok(): pass
    ''')
    result = run(suite, "-m", "daily")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["NOT CHECKED: 1 check file(s) could not be collected*"])
    assert "every check passed" not in result.stdout.str()


def test_a_listing_of_checks_writes_nothing(suite, tmp_path):
    """`--collect-only` (the schedule asks it which cadences have checks) is no run: it must not
    create the state directory, a lock or a report, on the box or here."""
    suite.makepyfile(FIXABLE.format(marker=str(tmp_path / "marker")))
    result = run(suite, "-m", "daily", "--collect-only", "-q")
    assert result.ret == 0 and "test_marker_exists" in result.stdout.str()
    assert not (tmp_path / "state").exists() and not suite.reports.exists()


def test_figures_a_check_measured_are_in_the_summary_and_both_reports_passed_or_not(suite):
    suite.makepyfile('''
        import pytest
        @pytest.mark.daily
        @pytest.mark.check("X-010", severity="info", why="the week in numbers")
        def test_week_in_numbers(record_property):
            record_property("trades_7d", 42)
            record_property("profit_7d_usdt", "18.40")
        @pytest.mark.daily
        @pytest.mark.check("X-011", severity="warning", why="a slow answer is a slow trade")
        def test_latency_below_threshold(record_property):
            record_property("latency_ms", 1250)
            assert 1250 <= 1000, "latency 1250 ms, over the warning 1000 ms by 250"
        @pytest.mark.daily
        @pytest.mark.check("X-012", severity="info", why="nothing to measure")
        def test_without_figures():
            pass
    ''')
    result = run(suite, "-m", "daily", "-rN")  # as the suite's pytest.ini: no pytest short summary
    # A finding's figures are said with it (each finding is said once); the other checks' under FIGURES.
    result.stdout.fnmatch_lines(["*X-011*test_latency_below_threshold: latency 1250 ms*", "*figures: latency_ms=1250",
                                 "FIGURES (1)", "  X-010    test_week_in_numbers: trades_7d=42, profit_7d_usdt=18.40"])
    assert result.stdout.str().split("maintenance summary")[1].count("test_latency_below_threshold") == 1
    assert "test_without_figures:" not in result.stdout.str()
    html = next(suite.reports.glob("daily-*.html")).read_text()
    assert "FIGURES (1)" in html.upper() and "trades_7d=42, profit_7d_usdt=18.40" in html
    assert "figures: latency_ms=1250" in html
    assert junit_properties(suite)["test_latency_below_threshold"]["latency_ms"] == "1250"


FLEET = '\n[[boxes]]\nname = "nuc-1"\n\n[[boxes]]\nname = "nuc-2"\n'
PER_BOX = '''
    import pytest
    @pytest.mark.daily
    @pytest.mark.check("X-001", severity="info", why="w")
    def test_box_answers(settings): pass
'''


def test_one_box_of_a_fleet_runs_its_own_checks_only_with_the_fleets_ids(suite, tmp_path):
    """`make update-* BOX=nuc-2` verifies with nuc-2's checks: another box's finding is no verdict on its update."""
    suite.config_path.write_text(suite.config_path.read_text() + FLEET)
    suite.makepyfile(PER_BOX)
    result = run(suite, "-m", "daily", "--maintenance-box=nuc-2", "-v")
    assert result.ret == 0 and result.parseoutcomes() == {"passed": 1}
    result.stdout.fnmatch_lines(["*test_box_answers[[]nuc-2[]] PASSED*", "*daily run on nuc-2, remediation mode*"])
    assert "nuc-1" not in result.stdout.str()
    assert list(junit_properties(suite)) == ["test_box_answers[nuc-2]"]  # the fleet's id: the same state keys


def test_a_box_the_configuration_does_not_name_is_refused_before_anything_is_written(suite, tmp_path):
    suite.config_path.write_text(suite.config_path.read_text() + FLEET)
    suite.makepyfile(PER_BOX)
    result = run(suite, "-m", "daily", "--maintenance-box=nuc-3")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--maintenance-box nuc-3: * has no box of that name; its boxes: nuc-1, nuc-2"])
    assert not (tmp_path / "state").exists() and not suite.reports.exists()
