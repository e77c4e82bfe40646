"""What the operator reads first, at the end of the terminal output: each finding, what was done
about it, the alerts, and where the reports are."""

from __future__ import annotations

from core.vocabulary import Prop

WIDTH = 300


def write_summary(terminal, tally, alerter, report_paths) -> None:
    terminal.write_sep("-", "maintenance summary")
    broken = [report for report in terminal.stats.get("error", []) if getattr(report, "when", "collect") == "collect"]
    if broken:
        terminal.write_line(f"NOT CHECKED: {len(broken)} check file(s) could not be collected (see the errors "
                            f"above): what they check was not looked at")
    for nodeid, found in tally.findings:
        said = f"caused by {found[Prop.CAUSED_BY]}" if Prop.CAUSED_BY in found else found.get(Prop.PROBLEM, '')
        line = f"{found[Prop.VERDICT].upper():8} {found[Prop.CHECK_ID]:8} {found[Prop.SEVERITY]:8} " \
               f"{nodeid.split('::')[-1]}: {said}"
        terminal.write_line(line[:WIDTH])
        for key in (Prop.REMEDIATION_OUTCOME, Prop.POLICY):
            if key in found:
                recheck = f" (re-check: {found[Prop.RECHECK]})" if key == Prop.REMEDIATION_OUTCOME else ""
                terminal.write_line(f"{'':27}{key.split('_')[0]}: {found[key]}{recheck}"[:WIDTH])
    if not tally.findings and not broken:
        terminal.write_line("every check passed")
    keys = {o.key for o in alerter.result.outcomes}
    sent = len(alerter.result.sent_keys())
    terminal.write_line(f"{sent} alert message(s) sent to every channel they were for"
                        + (f"; {len(keys) - sent} not (below)" if len(keys) > sent else "")
                        + f"; every one is also in {alerter.settings.alerts.file}")
    for line in alerter.result.undelivered_lines():
        terminal.write_line(f"NOT DELIVERED: {line}")
    html_path, xml_path = report_paths
    terminal.write_line(f"HTML report: {html_path}")
    terminal.write_line(f"JUnit XML:   {xml_path}")
