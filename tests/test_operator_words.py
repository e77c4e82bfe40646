"""What the operator reads after a run on the lab: verdicts in the operator's words, each finding once,
what is still wrong first, and alerts worth reading.

First contact, finding 9 ("a finding fixed by its remediation is shown as FAILED ... each finding is
printed three times ... the remediation mode is not shown with -q") and "alerts worth reading".
One run serves every test here: a dashboard that is down (fixed by a restart), an error rate over its
threshold (still wrong after its diagnostic), files past retention (routine clean-up), and a
known-errors file that is missing (ERR-005 could not check).
"""

from __future__ import annotations

import html as html_text
import json
import re
import shutil

import pytest

from conftest import ROOT, CadenceRun, alerts_path, config_with, run_cadence

pytestmark = pytest.mark.lab

FAULTS = ("service-down:trading-dashboard", "error-rate-high", "files-past-retention")


@pytest.fixture(scope="module")
def told(lab, lab_config, tmp_path_factory) -> CadenceRun:
    lab.clear()
    shutil.rmtree(lab.paths.root / "maintenance", ignore_errors=True)
    for fault in FAULTS:
        lab.inject(fault)
    tmp = tmp_path_factory.mktemp("told")
    config = config_with(lab_config, tmp / "maintenance.toml",
                         {"paths": {"known_errors": str(tmp / "gone" / "known-errors.txt")}})
    alerts = alerts_path(config)
    before = alerts.stat().st_size if alerts.exists() else 0
    run = run_cadence(config, tmp / "reports", "-q")
    run.alerts_text = alerts.read_bytes()[before:].decode()  # this run's alerts, not earlier tests'

    yield run
    lab.clear()


def result_cells(report: str) -> list[str]:
    """The Result cell of every row of a pytest-html report (its rows travel as a JSON blob)."""
    blob = json.loads(html_text.unescape(re.search(r'data-jsonblob="([^"]*)"', report).group(1)))
    return [row["resultsTableRow"][0] for rows in blob["tests"].values() for row in rows]


def verdicts(run: CadenceRun) -> dict[str, str]:
    return {result.name: result.properties["verdict"] for result in run.results}


def test_the_run_is_what_the_fixture_meant(told):
    found = verdicts(told)
    assert found["test_service_is_running[trading-dashboard]"] == "fixed", told.output
    assert found["test_error_rate_below_threshold"] == "failed", told.output
    assert found["test_no_new_error_types"] == "unknown", told.output
    assert {found[name] for name in found if name.startswith("test_no_files_past_retention")} == {"fixed"}
    assert told.returncode == 11


def test_a_fixed_finding_is_fixed_in_the_terminal_the_html_and_junit(told):
    last = told.output.rstrip().splitlines()[-1]
    assert "4 fixed" in last and "1 failed" in last and "1 unknown" in last, last
    dashboard = told.only("SVC-001", "trading-dashboard")
    assert dashboard.properties["verdict"] == "fixed"
    assert dashboard.outcome == "failed", "JUnit keeps a fixed finding as a failure: CI must still see it"
    cells = result_cells(told.html.read_text())
    assert cells.count('<td class="col-result verdict-fixed">Fixed</td>') == 4, cells
    assert cells.count('<td class="col-result verdict-failed">Failed</td>') == 1, cells
    assert cells.count('<td class="col-result verdict-unknown">Unknown</td>') == 1, cells


def test_each_finding_is_printed_once(told):
    for name in ("test_service_is_running[trading-dashboard]", "test_error_rate_below_threshold",
                 "test_no_new_error_types"):
        assert told.output.count(name) == 1, f"{name} printed {told.output.count(name)} times:\n{told.output}"
    assert "Traceback" not in told.output and "short test summary" not in told.output


def test_what_is_still_wrong_comes_first(told):
    lines = told.output.splitlines()
    headings = [line.split(" (")[0] for line in lines if line.split(" (")[0] in
                ("STILL WRONG", "COULD NOT CHECK", "FIXED")]
    assert headings == ["STILL WRONG", "COULD NOT CHECK", "FIXED"], told.output
    still_wrong = next(i for i, line in enumerate(lines) if line.startswith("STILL WRONG"))
    assert lines[still_wrong + 1].strip().startswith("FAILED   ERR-001")


def test_the_remediation_mode_is_shown_with_q(told):
    assert "maintenance summary: daily run on trading-box, remediation mode apply" in told.output


def test_the_html_opens_with_the_same_summary_and_counts_every_check(told):
    html = told.html.read_text()
    summary = html.index('class="maintenance-summary"')
    assert summary < html.index('id="results-table"')
    # pytest-html writes its environment table first: the report's style shows it after the summary.
    assert "#environment-header, #environment { order: 1; }" in html
    assert "still wrong (1)" in html and "could not check (1)" in html and "fixed (4)" in html
    assert f"{len(told.results)} checks: " in html, "the summary counts every check, unknown ones included"
    assert ".summary .run-count" in html, "pytest-html's own count (which leaves errors out) is hidden"
    assert "alert message(s) sent" in html[summary:]


def test_junit_names_its_suite_by_cadence(told):
    assert '<testsuite name="maintenance-daily"' in told.junit.read_text()


def test_a_fixed_finding_is_told_as_done_and_routine_clean_up_tells_nobody(told):
    kinds = {alert["check_id"]: alert["kind"] for alert in told.alerts}
    assert kinds["SVC-001"] == "fixed" and kinds["ERR-001"] == "problem", kinds
    assert "LOG-002" not in kinds, "yesterday's temp files removed is routine: nobody is paged for it"
    digest = told.alerts_text.splitlines()[-1]
    assert '"title": "daily run: 1 still wrong, 1 could not check, 1 fixed"' in digest, digest
    assert digest.index("Still wrong:") < digest.index("Fixed:")


def test_every_alert_names_its_box_and_why_and_no_path_of_the_suite(told):
    assert told.alerts
    for alert in told.alerts:
        assert alert["box"] == "trading-box" and alert["why"], alert
    assert str(ROOT) not in told.alerts_text, "an alert names a file of the suite's own installation"
