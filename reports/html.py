"""What the HTML report shows beyond pytest-html's own: the maintenance columns, the details of
each check (why it matters, its readings, the policy's notes), the remediation's record under its
row, the run's facts and a title that names the run."""

from __future__ import annotations

import html
from pathlib import Path

import pytest

from core.vocabulary import Prop, RunFact

# The verdict is in pytest-html's own Result column (see `row`).
COLUMNS = (Prop.CHECK_ID, Prop.CADENCE, Prop.SEVERITY, Prop.REMEDIATION_OUTCOME)
TITLES = {Prop.CHECK_ID: "Check", Prop.CADENCE: "Cadence", Prop.SEVERITY: "Severity",
          Prop.REMEDIATION_OUTCOME: "Remediation"}
# Everything else a check or the policy recorded (readings such as profit_today_usdt, notes) goes in Details.
NOT_DETAILS = {*COLUMNS, Prop.VERDICT, Prop.REMEDIATION, Prop.RECHECK, Prop.WHY}


class HtmlTitle:
    """pytest-html titles a report by its file name, which is the hidden partial one while it is written."""

    def __init__(self, title: str):
        self.title = title

    def pytest_html_report_title(self, report) -> None:
        report.title = self.title


STYLE = Path(__file__).with_name("report.css")


def add_style(config: pytest.Config) -> None:
    """Rows coloured by the operator's verdict, and the maintenance summary at the top (reports/report.css)."""
    config.option.css = [*(config.option.css or []), str(STYLE)]


def record_run_facts(config: pytest.Config, facts: dict[RunFact, str]) -> None:
    """The run's mode, cadence and configuration file, in the HTML report's environment table."""
    from pytest_metadata.plugin import metadata_key

    config.stash[metadata_key].update({fact.value: value for fact, value in facts.items()})


def attach(report: pytest.TestReport, name: str, text: str) -> None:
    """A text block under the check's row."""
    from pytest_html import extras

    report.extras = [*getattr(report, "extras", []), extras.text(text, name=name)]


def header(cells: list[str]) -> None:
    cells[1:1] = [f'<th class="sortable" data-column-type="{key}">{TITLES[key]}</th>' for key in COLUMNS]
    cells.append('<th data-column-type="details">Details</th>')


def row(report, cells: list[str]) -> None:
    """pytest-html's Result cell says the operator's verdict (a fixed finding is not "Failed"); the
    verdict's class colours the row."""
    properties = dict(getattr(report, "user_properties", ()))  # collection errors have none
    if Prop.VERDICT not in properties and Prop.CHECK_ID in properties:
        properties[Prop.VERDICT] = report.outcome
    if Prop.VERDICT in properties:
        verdict = html.escape(properties[Prop.VERDICT])
        cells[0] = f'<td class="col-result verdict-{verdict}">{verdict.capitalize()}</td>'
    if Prop.RECHECK in properties:
        properties[Prop.REMEDIATION_OUTCOME] += f" (re-check: {properties[Prop.RECHECK]})"
    cells[1:1] = [f'<td class="col-{key}">{html.escape(str(properties.get(key, "")))}</td>' for key in COLUMNS]
    details = [f"why it matters: {properties[Prop.WHY]}"] if Prop.WHY in properties else []
    details += [f"{key}: {value}" for key, value in properties.items() if key not in NOT_DETAILS]
    cells.append(f'<td class="col-details">{html.escape("; ".join(details))}</td>')
