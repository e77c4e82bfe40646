"""The run index (`index.html` in the reports directory): every run newest first, with its cadence, box(es),
verdict counts, exit status and both reports (a pruned one named, not linked); every check instance's
current state linking to its history page; filters by cadence, box and verdict in pure CSS (radio inputs
and :checked), so the page works offline from file:// with no script and nothing fetched.

`after_run(reports_dir, settings)` is what the plugin calls after every run, once the run's ledger line is
written: it reads only what the ledger gained (reports/trail.py) and rewrites the index, the history pages
of the checks that ran, the trends and the Prometheus textfile. `rebuild` throws every output and the cache
away and makes them again from the ledger and the reports alone (`make reindex`).

Runs are shown PAGE_SIZE at a time: index.html has the newest; older runs are on `runs-<n>.html` pages,
numbered from the oldest, so a page once full never changes (but for a prune naming its reports).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

from configuration import Settings
from core import rootfiles
from core.atomic import write_atomically
from core.vocabulary import Cadence, Verdict
from reports.files import shared_access
from reports.history import HISTORY_DIR, file_name, state_words, strip, write_history
from reports.page import escape, page, verdict_cell
from reports.prometheus import textfile_path, write_textfile
from reports.trail import CACHE, ReportState, Trail
from reports.trends import write_trends

INDEX = "index.html"
PAGE_SIZE = 500
LOCK = ".trail.lock"
ARCHIVE = re.compile(r"^runs-\d+\.html$")
# The verdict filter: a run shows under each verdict it counted; "passed" means nothing else.
VERDICT_FILTERS = (Verdict.FAILED, Verdict.UNKNOWN, Verdict.FIXED, Verdict.WAIVED, Verdict.PASSED)
FILTER_WORDS = {Verdict.FAILED: "still wrong", Verdict.UNKNOWN: "unknown", Verdict.FIXED: "fixed",
                Verdict.WAIVED: "waived", Verdict.PASSED: "all passed"}


@dataclass
class Written:
    """What one update wrote (paths), and how much it read: for the plugin's summary and the bench."""

    lines_read: int = 0
    rebuilt: bool = False
    paths: list[Path] = field(default_factory=list)


def after_run(reports_dir: Path, settings: Settings | None = None) -> Written:
    """Bring the index, the history pages, the trends and the textfile up to date with the ledger.

    Cheap after one more run: the cache says where the ledger was read to; only the new lines and their
    reports are read, and only the pages they change are written. Several runs (of different cadences)
    ending at once take turns (a file lock beside the ledger)."""
    reports_dir = rootfiles.ensure_directory(reports_dir)  # checked before the lock is made in it
    history_length = settings.reports.history_length if settings is not None else 30
    with FileLock(reports_dir / LOCK, timeout=120):
        trail = Trail.load(reports_dir, history_length)
        written = Written(rebuilt=trail.fresh)
        written.lines_read = trail.update()
        written.paths += write_pages(trail, settings, everything=written.rebuilt)
        trail.save()
    return written


def rebuild(reports_dir: Path, settings: Settings | None = None) -> Written:
    """Everything from the ledger and the reports alone: the outputs and the cache removed, then made again."""
    reports_dir = Path(reports_dir)
    with FileLock(reports_dir / LOCK, timeout=120):
        for path in outputs(reports_dir, settings):
            path.unlink(missing_ok=True)
    return after_run(reports_dir, settings)


def outputs(reports_dir: Path, settings: Settings | None) -> list[Path]:
    """Every file the audit trail's pages are: what `rebuild` removes first (nothing else is touched)."""
    found = [reports_dir / CACHE, reports_dir / INDEX, reports_dir / "trends.html",
             textfile_path(reports_dir, settings.reports.prometheus_textfile if settings else None)]
    found += [path for path in reports_dir.glob("runs-*.html") if ARCHIVE.match(path.name)]
    found += list((reports_dir / HISTORY_DIR).glob("*.html"))
    return found


def write_pages(trail: Trail, settings: Settings | None, everything: bool) -> list[Path]:
    directory = trail.dir
    access = shared_access(settings)  # the pages and the textfile: for a web server and node_exporter
    written = []
    by_instance: dict[str, list[dict]] = {}
    for series in trail.series.values():
        by_instance.setdefault(series["key"], []).append(series)
    for key in sorted(trail.instances if everything else trail.touched):
        written.append(write_history(directory, key, trail.instances[key], by_instance.get(key, []), settings))
    full_pages = len(trail.runs) // PAGE_SIZE
    touched_pages = {position // PAGE_SIZE + 1 for position in trail.touched_runs}
    for number in range(1, full_pages + 1):
        path = directory / f"runs-{number}.html"
        if everything or number in touched_pages or not path.exists():
            runs = trail.runs[(number - 1) * PAGE_SIZE: number * PAGE_SIZE]
            write_atomically(path, render_runs_page(
                f"runs {(number - 1) * PAGE_SIZE + 1} to {number * PAGE_SIZE}", runs, {}, full_pages), *access)
            written.append(path)
    index = directory / INDEX
    write_atomically(index, render_runs_page("", trail.runs[-PAGE_SIZE:], trail.instances, full_pages,
                                             total=len(trail.runs)), *access)
    written.append(index)
    written.append(write_trends(directory, trail.series, settings))
    written.append(write_textfile(textfile_path(directory, settings.reports.prometheus_textfile if settings else None),
                                  trail.instances, trail.latest, trail.series, *access))
    return written


def run_verdicts(run: dict) -> list[str]:
    counts = run["counts"]
    found = [verdict for verdict in (Verdict.FAILED, Verdict.UNKNOWN, Verdict.FIXED, Verdict.WAIVED)
             if counts.get(verdict, 0)]
    return found if any(v in found for v in (Verdict.FAILED, Verdict.UNKNOWN, Verdict.FIXED)) else [
        *found, Verdict.PASSED]


def report_cell(report: dict) -> str:
    name, state = report["name"], report["state"]
    if state == ReportState.NOT_WRITTEN:
        return '<span class="note">not written</span>'
    if state == ReportState.PRESENT:
        return f'<a href="{escape(name)}">{escape(name)}</a>'
    if state == ReportState.ALTERED:
        return (f'<a href="{escape(name)}">{escape(name)}</a> <span class="altered">changed since the run '
                f"(make verify-trail)</span>")
    return f'{escape(name)} <span class="{escape(state)}">{escape(state)}</span>'


def filters(boxes: list[str]) -> tuple[str, str, str]:
    """(the radio inputs, their labels, the CSS that hides the rows the checked ones rule out)."""
    groups = [("c", "cadence", [(str(c), str(c)) for c in Cadence]),
              ("b", "box", [(f"b{i}", box) for i, box in enumerate(boxes)]),
              ("v", "verdict", [(str(v), FILTER_WORDS[v]) for v in VERDICT_FILTERS])]
    inputs, navs, rules = [], [], []
    for prefix, title, options in groups:
        inputs.append(f'<input class="filter" type="radio" name="{prefix}" id="{prefix}-all" checked>')
        labels = [f'<label for="{prefix}-all">all</label>']
        for value, words in options:
            ident = f"{prefix}-{value}"
            inputs.append(f'<input class="filter" type="radio" name="{prefix}" id="{ident}">')
            labels.append(f'<label for="{ident}">{escape(words)}</label>')
            rules.append(f"#{ident}:checked ~ main .row:not(.{ident}) {{ display: none; }}")
            rules.append(f'#{ident}:checked ~ nav label[for="{ident}"] {{ background: #1f2328; color: #fff; }}')
        rules.append(f'#{prefix}-all:checked ~ nav label[for="{prefix}-all"] {{ background: #1f2328; color: #fff; }}')
        navs.append(f"<nav>{title}: {' '.join(labels)}</nav>")
    return "".join(inputs), "\n".join(navs), "\n".join(rules)


def render_runs_page(title: str, runs: list[dict], instances: dict[str, dict], full_pages: int,
                     total: int | None = None) -> str:
    boxes = sorted({box for run in runs for box in run["boxes"]} | {r["box"] for r in instances.values()})
    box_class = {box: f"b-b{i}" for i, box in enumerate(boxes)}
    inputs, navs, rules = filters(boxes)
    rows = []
    for run in reversed(runs):
        counts = run["counts"]
        classes = ["row", f"c-{run['cadence']}", *(box_class[b] for b in run["boxes"]),
                   *(f"v-{v}" for v in run_verdicts(run))]
        status = run["exit_status"]
        rows.append(
            f'<tr class="{escape(" ".join(classes))}"><td>{escape(run["started"])}</td>'
            f'<td>{escape(run["cadence"])}</td><td>{escape(", ".join(run["boxes"]))}</td>'
            + "".join(f'<td class="n {v if counts.get(v) else ""}">{counts.get(v, 0)}</td>'
                      for v in (Verdict.FAILED, Verdict.FIXED, Verdict.UNKNOWN, Verdict.PASSED))
            + f'<td class="n">{counts.get(Verdict.WAIVED, 0)}/{counts.get(Verdict.SKIPPED, 0)}</td>'
            f'<td>{escape("" if status is None else status)} {escape(run["exit_words"])}</td>'
            f'<td class="n">{run["duration_s"]:.1f}</td>'
            f'<td>{report_cell(run["reports"]["html"])}</td><td>{report_cell(run["reports"]["xml"])}</td></tr>')
    checks = []
    for key, record in sorted(instances.items(), key=lambda item: (item[1]["box"], item[1]["instance"])):
        latest = (record.get("latest") or {}).get("verdict", "")
        classes = ["row", f"c-{record['cadence']}", box_class[record["box"]], f"v-{latest}"]
        remediated = sum(record["remediations"].values())
        checks.append(
            f'<tr class="{escape(" ".join(classes))}"><td><a href="{HISTORY_DIR}/{escape(file_name(key))}">'
            f'{escape(record["instance"])}</a></td><td>{escape(record["box"])}</td><td>{escape(record["cadence"])}</td>'
            f'<td>{verdict_cell(latest)} {escape(state_words(record).partition("; ")[2])}</td>'
            f'<td>{escape(record["last_failed"] or "-")}</td><td class="n">{remediated}</td>'
            f"<td>{strip(record)}</td></tr>")
    archive = " ".join(f'<a href="runs-{n}.html">{(n - 1) * PAGE_SIZE + 1}-{n * PAGE_SIZE}</a>'
                       for n in range(full_pages, 0, -1))
    heading = "Trading box maintenance: the runs" + (f", {title}" if title else "")
    shown = f"the newest {len(runs)} of {total} runs" if total is not None else f"{len(runs)} runs"
    checks_section = (f"""<h2>Every check instance now</h2>
<table><tr><th>check</th><th>box</th><th>cadence</th><th>state</th><th>last failed</th><th>remediated</th>
<th>last results (oldest first)</th></tr>
{chr(10).join(checks)}</table>""" if instances else "")
    body = f"""<h1>{escape(heading)}</h1>
<p>{escape(shown)} · <a href="trends.html">trends of the figures</a>{' · ' if title else ''}{
        '<a href="index.html">the newest runs</a>' if title else ''}{
        ' · older runs: ' + archive if archive else ''}</p>
{inputs}
{navs}
<main>
{checks_section}
<h2>Runs, newest first</h2>
<table><tr><th>started</th><th>cadence</th><th>box</th><th>still wrong</th><th>fixed</th><th>unknown</th>
<th>passed</th><th>waived/skipped</th><th>exit status</th><th>seconds</th><th>HTML report</th><th>JUnit XML</th></tr>
{chr(10).join(rows) or '<tr><td colspan="12">No run on record yet.</td></tr>'}
</table>
</main>"""
    return page(heading, body, rules)
