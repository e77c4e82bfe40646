"""The audit trail: one self-contained HTML and one JUnit XML per run, never overwritten."""

from __future__ import annotations

import datetime
import html
import os
from pathlib import Path

import pytest
from _pytest.junitxml import xml_key

from suite.identity import CADENCES

REPORT_PATHS = pytest.StashKey[tuple[Path, Path]]()
COLUMNS = ("check_id", "cadence", "severity", "verdict", "remediation_outcome")
# Everything else a check or the policy recorded (readings such as profit_today_usdt, notes) goes in Details.
NOT_DETAILS = {*COLUMNS, "remediation", "recheck"}


def cadence_of(config: pytest.Config) -> str:
    """The cadence named by -m, or 'custom' for any other selection."""
    expression = (config.option.markexpr or "").strip()
    if expression in CADENCES:
        return expression
    return "all" if not expression else "custom"


def choose_report_paths(config: pytest.Config, directory: Path | str) -> None:
    """Name reports by cadence and time; an explicit --html/--junitxml from the operator wins."""
    directory = Path(directory)
    if not directory.is_absolute():
        directory = config.rootpath / directory
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{cadence_of(config)}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    candidate, n = stem, 1
    while (directory / f"{candidate}.html").exists() or (directory / f"{candidate}.xml").exists():
        n += 1
        candidate = f"{stem}-{n}"
    final = {"htmlpath": directory / f"{candidate}.html", "xmlpath": directory / f"{candidate}.xml"}
    for option, path in final.items():
        if getattr(config.option, option):  # the operator named it: theirs, written as they asked
            final[option] = Path(getattr(config.option, option))
        else:
            setattr(config.option, option, str(partial(path)))
    config.option.self_contained_html = True
    config.stash[REPORT_PATHS] = (final["htmlpath"], final["xmlpath"])
    config.pluginmanager.register(HtmlTitle(f"Trading box maintenance: {final['htmlpath'].stem}"), "maintenance-title")


def record_run_facts(config: pytest.Config, facts: dict[str, str]) -> None:
    """The run's mode, cadence and configuration file, in both reports (HTML environment, JUnit properties)."""
    from pytest_metadata.plugin import metadata_key

    config.stash[metadata_key].update(facts)
    xml = config.stash.get(xml_key, None)
    if xml is not None:
        for name, value in facts.items():
            xml.add_global_property(name.lower().replace(" ", "_"), value)


class HtmlTitle:
    """pytest-html titles a report by its file name, which is the hidden partial one while it is written."""

    def __init__(self, title: str):
        self.title = title

    def pytest_html_report_title(self, report) -> None:
        report.title = self.title


def partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def publish_reports(config: pytest.Config) -> None:
    """pytest-html and junitxml write in place; we let them write a hidden partial file and rename it
    once complete, so a run killed while writing never leaves a truncated report under a report's name."""
    paths = config.stash.get(REPORT_PATHS, None)
    if paths is None:
        return
    for path in paths:
        if partial(path).exists():
            os.replace(partial(path), path)
    # Their own "generated ... report" lines are printed after this: point them at the published files.
    xml = config.stash.get(xml_key, None)
    if xml is not None:
        xml.logfile = str(paths[1])
    for plugin in config.pluginmanager.get_plugins():
        if hasattr(plugin, "_report_path"):  # pytest-html's report object keeps its path there
            plugin._report_path = paths[0]


def remedy_text(remedy) -> str:
    lines = [remedy.outcome.summary(), f"re-check: {remedy.recheck}"]
    if remedy.recheck_problem:
        lines.append(f"still: {remedy.recheck_problem}")
    if remedy.outcome.output:
        lines += ["output:", remedy.outcome.output]
    return "\n".join(lines)


def attach(report: pytest.TestReport, name: str, text: str) -> None:
    """A text block under the check's row in the HTML report."""
    from pytest_html import extras

    report.extras = [*getattr(report, "extras", []), extras.text(text, name=name)]


def html_header(cells: list[str]) -> None:
    titles = {"check_id": "Check", "cadence": "Cadence", "severity": "Severity",
              "verdict": "Verdict", "remediation_outcome": "Remediation"}
    cells[1:1] = [f'<th class="sortable" data-column-type="{key}">{titles[key]}</th>' for key in COLUMNS]
    cells.append('<th data-column-type="details">Details</th>')


def html_row(report, cells: list[str]) -> None:
    properties = dict(getattr(report, "user_properties", ()))  # collection errors have none
    if "verdict" not in properties and "check_id" in properties:
        properties["verdict"] = report.outcome
    if "recheck" in properties:
        properties["remediation_outcome"] += f" (re-check: {properties['recheck']})"
    cells[1:1] = [f'<td class="col-{key}">{html.escape(str(properties.get(key, "")))}</td>' for key in COLUMNS]
    details = "; ".join(f"{key}: {value}" for key, value in properties.items() if key not in NOT_DETAILS)
    cells.append(f'<td class="col-details">{html.escape(details)}</td>')


def summarize(terminal, config: pytest.Config, tally, alerter) -> None:
    """What the operator reads first: each finding, what was done about it, where the reports are."""
    paths = config.stash.get(REPORT_PATHS, None)
    if paths is None:
        return
    terminal.write_sep("-", "maintenance summary")
    for nodeid, found in tally.findings:
        line = f"{found['verdict'].upper():8} {found['check_id']:8} {found['severity']:8} " \
               f"{nodeid.split('::')[-1]}: {found.get('problem', '')}"
        terminal.write_line(line[:300])
        for key in ("remediation_outcome", "policy"):
            if key in found:
                recheck = f" (re-check: {found['recheck']})" if key == "remediation_outcome" else ""
                terminal.write_line(f"{'':27}{key.split('_')[0]}: {found[key]}{recheck}"[:300])
    if not tally.findings:
        terminal.write_line("every check passed")
    terminal.write_line(f"{len(alerter.sent)} alert message(s) sent; every one is also in {alerter.settings.alerts.file}")
    for line in alerter.result.lines() if alerter.undelivered else ():
        terminal.write_line(f"NOT DELIVERED: {line}")
    html_path, xml_path = paths
    terminal.write_line(f"HTML report: {html_path}")
    terminal.write_line(f"JUnit XML:   {xml_path}")
