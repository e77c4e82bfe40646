"""What the operator reads first: what is still wrong, what could not be checked, what was fixed,
the figures the checks measured, the alerts, where the reports are. Said once, at the end of the
terminal output, and at the top of the HTML report, in the same words."""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass, field

from core.text import printable
from core.vocabulary import Prop, Verdict
from reports.tally import FINDING_ORDER, Tally, figures_of

HEADINGS = {Verdict.FAILED: "still wrong", Verdict.UNKNOWN: "could not check", Verdict.FIXED: "fixed",
            Verdict.WAIVED: "waived"}
WIDTH = 300  # a terminal line longer than this is cut, and says so


@dataclass
class Summary:
    """The run's summary as lines of text, grouped; `heading` names the run and its mode."""

    heading: str
    not_collected: list[str] = field(default_factory=list)  # "path: the error", one per broken check file
    sections: list[tuple[str, list[list[str]]]] = field(default_factory=list)  # (heading, entries of lines)
    overview: str = ""
    alerts: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # emergency responses that hold trading until resumed
    figures: list[str] = field(default_factory=list)  # what the other checks measured: one line per check
    notes: list[str] = field(default_factory=list)  # about the run itself (its state file was set aside)


def summarize(heading: str, tally: Tally, alerter, not_collected: list[str], waiting: list[str] = (),
              notes: list[str] = ()) -> Summary:
    sections = []
    for verdict in FINDING_ORDER:
        found = tally.findings(verdict)
        if found:
            entries = by_box(found) if verdict == Verdict.UNKNOWN else [entry(nodeid, props) for nodeid, props in found]
            sections.append((f"{HEADINGS[verdict]} ({len(found)})", entries))
    unheard = unheard_note(alerter.settings)
    return Summary(heading, not_collected, sections, tally.overview(), alert_lines(alerter), list(waiting),
                   [figure_line(*measured) for measured in tally.figures], [*notes, *([unheard] if unheard else [])])


def unheard_note(settings) -> str | None:
    """Boxes watched from this machine whose alerts reach no one: the file channel is on this machine, so a box
    that dies tells nobody. Said once per run, in the summary; None when a channel reaches a person or the box
    is this machine."""
    remote = [box.host.name for box in settings.boxes() if not box.host.backend.startswith("local://")]
    if not remote or settings.alerts.enabled():
        return None
    return (f"alerts go only to a file on this machine ([alerts] file {settings.alerts.file}): configure a channel "
            f"that reaches a person ([alerts.telegram] or [alerts.email] in {settings.source}): "
            f"{', '.join(remote)} {'is' if len(remote) == 1 else 'are'} watched from here, and if "
            f"{'it stops' if len(remote) == 1 else 'one stops'} answering, nobody hears of it")


def figure_line(nodeid: str, check_id: str, figures: dict) -> str:
    """`PERF-001 test_week_performance: trades_7d=42, profit_7d_usdt=18.40`."""
    return f"{check_id:8} {nodeid.split('::')[-1]}: " + ", ".join(f"{name}={value}" for name, value in figures.items())


def by_box(found: list[tuple[str, dict]]) -> list[list[str]]:
    """One entry per check, except the checks of a box that stopped answering: one entry for that box, where its
    first check was, saying its reason once and which checks it left without a look."""
    entries: list[list[str] | str] = []  # a box's name stands where its entry goes
    boxes: dict[str, list[dict]] = {}
    for nodeid, props in found:
        box = props.get(Prop.UNREACHABLE)
        if box is None:
            entries.append(entry(nodeid, props))
        elif box not in boxes:
            boxes[box] = [props]
            entries.append(box)
        else:
            boxes[box].append(props)
    return [unreachable_entry(item, boxes[item]) if isinstance(item, str) else item for item in entries]


def unreachable_entry(box: str, found: list[dict]) -> list[str]:
    counts = Counter(props[Prop.CHECK_ID] for props in found)
    checks = ", ".join(f"{check} x{count}" if count > 1 else check for check, count in counts.items())
    return [f"{Verdict.UNKNOWN.upper():8} box {box} unreachable: {found[0].get(Prop.PROBLEM, '')}",
            f"{len(found)} check(s) could not look: {checks}"]


def entry(nodeid: str, found: dict) -> list[str]:
    """A finding's line, then what was done about it."""
    # A dependent names its root cause instead of repeating what the root already says.
    said = found.get(Prop.PROBLEM, "")
    if Prop.CAUSED_BY in found:
        said = (f"waits on its root {found[Prop.CAUSED_BY]}" if found[Prop.VERDICT] == Verdict.UNKNOWN
                else f"caused by {found[Prop.CAUSED_BY]}")
    lines = [f"{found[Prop.VERDICT].upper():8} {found[Prop.CHECK_ID]:8} {found[Prop.SEVERITY]:8} "
             f"{nodeid.split('::')[-1]}: {said}"]
    if Prop.REMEDIATION_OUTCOME in found:
        lines.append(f"remediation: {found[Prop.REMEDIATION_OUTCOME]} (re-check: {found.get(Prop.RECHECK, '')})")
    if Prop.RECHECK_PROBLEM in found:
        lines.append(f"still: {found[Prop.RECHECK_PROBLEM]}")
    if Prop.POLICY in found:
        lines.append(f"policy: {found[Prop.POLICY]}")
    figures = figures_of(found)
    if figures:
        lines.append("figures: " + ", ".join(f"{name}={value}" for name, value in figures.items()))
    return lines


def alert_lines(alerter) -> list[str]:
    keys = {o.key for o in alerter.result.outcomes}
    sent = len(alerter.result.sent_keys())
    lines = [f"{sent} alert message(s) sent to every channel they were for"
             + (f"; {len(keys) - sent} not (below)" if len(keys) > sent else "")
             + f"; every one is also in {alerter.settings.alerts.file}"]
    return lines + [f"NOT DELIVERED: {line}" for line in alerter.result.undelivered_lines()]


def cut(line: str) -> str:
    """One terminal line: printable (a quoted log line may hold escape sequences), at most WIDTH long."""
    line = printable(line)
    if len(line) <= WIDTH:
        return line
    return f"{line[:WIDTH]}… [cut: {len(line) - WIDTH} more characters in the HTML report]"


def write_terminal(terminal, summary: Summary, report_paths) -> None:
    terminal.write_sep("-", f"maintenance summary: {printable(summary.heading)}")
    for line in summary.waiting:
        terminal.write_line(cut(f"WAITING FOR YOU: {line}"), red=True, bold=True)
    for line in summary.notes:
        terminal.write_line(cut(f"NOTE: {line}"), yellow=True)
    if summary.not_collected:
        terminal.write_line(f"NOT CHECKED: {len(summary.not_collected)} check file(s) could not be collected: "
                            f"what they check was not looked at", red=True)
        for line in summary.not_collected:
            terminal.write_line(cut(f"  {line}"))
    for heading, entries in summary.sections:
        terminal.write_line(heading.upper(), bold=True)
        for lines in entries:
            terminal.write_line(cut(f"  {lines[0]}"))
            for line in lines[1:]:
                terminal.write_line(cut(f"{'':29}{line}"))
    if not summary.sections and not summary.not_collected:
        terminal.write_line("every check passed")
    if summary.figures:
        terminal.write_line(f"FIGURES ({len(summary.figures)})", bold=True)
        for line in summary.figures:
            terminal.write_line(cut(f"  {line}"))
    terminal.write_line(summary.overview)
    for line in summary.alerts:
        terminal.write_line(cut(line))
    html_path, xml_path = report_paths
    terminal.write_line(f"HTML report: {html_path}")
    terminal.write_line(f"JUnit XML:   {xml_path}")
    terminal.write_line(f"Every run:   {html_path.parent / 'index.html'} (the run index, updated as this run ends)")


def as_html(summary: Summary) -> list[str]:
    """The same summary, whole (nothing is cut), for the top of the HTML report."""
    parts = [f'<div class="maintenance-summary"><p class="maintenance-heading">{_escaped(summary.heading)}</p>']
    if summary.waiting:
        parts.append(_block("waiting for you", "not-checked", [[line] for line in summary.waiting]))
    if summary.notes:
        parts.append(_block("note", "not-checked", [[line] for line in summary.notes]))
    if summary.not_collected:
        parts.append(_block("not checked", "not-checked", [[line] for line in summary.not_collected]))
    for heading, entries in summary.sections:
        parts.append(_block(heading, heading.split(" (")[0].replace(" ", "-"), entries))
    if not summary.sections and not summary.not_collected:
        parts.append("<p>every check passed</p>")
    if summary.figures:
        parts.append(_block(f"figures ({len(summary.figures)})", "figures", [[line] for line in summary.figures]))
    parts.append(f'<p class="maintenance-overview">{html.escape(summary.overview)}</p>')
    parts.append(_block("alerts", "alerts", [[line] for line in summary.alerts]))
    return [*parts, "</div>"]


def _block(heading: str, css_class: str, entries: list[list[str]]) -> str:
    items = "".join(f"<li>{'<br>'.join(_escaped(line) for line in lines)}</li>" for lines in entries)
    return f'<h3 class="{css_class}">{html.escape(heading)}</h3><ul class="{css_class}">{items}</ul>'


def _escaped(text: str) -> str:
    """HTML-escaped, its control characters shown as escapes, as in the terminal."""
    return html.escape(printable(text))
