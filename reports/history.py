"""One page per check instance (`history/<box>--<instance>.html`): its last results as a strip (newest
right, each linking to its run's report), when it last failed, how often it was remediated and with what
outcome, its current state (waived, silenced, budget spent when its latest run said so), and the trends of
the figures it records."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from configuration import Settings
from core.atomic import write_atomically
from core.vocabulary import Verdict
from reports.files import shared_access
from reports.page import escape, page, verdict_cell
from reports.trends import chart

HISTORY_DIR = "history"
LETTERS = {Verdict.PASSED: "✓", Verdict.FAILED: "✗", Verdict.FIXED: "F", Verdict.UNKNOWN: "?",
           Verdict.WAIVED: "W", Verdict.SKIPPED: "–"}


def file_name(key: str) -> str:
    """A file name for `box/CHECK-ID[parameters]`, readable and distinct per instance."""
    box, _, instance = key.partition("/")
    raw = f"{box}--{instance}"
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", raw).strip("_")
    if safe != raw:  # two instances that differ only in what was replaced must not share a page
        safe += "-" + hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{safe}.html"


def state_words(record: dict) -> str:
    """The instance's current state, with what its latest run's policy said: waived, silenced, budget spent."""
    latest = record.get("latest") or {}
    words = [latest.get("verdict", "")]
    policy = latest.get("policy", "")
    if latest.get("human_needed"):
        words.append(f"remediation budget spent: {latest['human_needed']}")
    if "silenced" in policy or latest.get("verdict") == Verdict.WAIVED and policy:
        words.append(policy)
    return "; ".join(word for word in words if word)


def strip(record: dict, link_prefix: str = "") -> str:
    cells = []
    for at, verdict, report in record["results"]:
        letter = LETTERS.get(verdict, "·")
        title = escape(f"{at}: {verdict}")
        cell = f'<span class="v-{escape(verdict)}" title="{title}">{letter}</span>'
        cells.append(f'<a href="{escape(link_prefix + report)}">{cell}</a>' if report else cell)
    return f'<div class="strip">{"".join(cells)}</div>'


def render(record: dict, series: list[dict], settings: Settings | None) -> str:
    latest = record.get("latest") or {}
    remediations = record["remediations"]
    done = "".join(f"<li>{escape(label)}: {count}</li>" for label, count in sorted(remediations.items()))
    total = sum(remediations.values())
    charts = "".join(chart(one, settings) for one in sorted(series, key=lambda one: one["figure"]))
    results = record["results"]
    body = f"""<h1>{escape(record['instance'])} on {escape(record['box'])}</h1>
<p><a href="../index.html">all runs</a> · <a href="../trends.html">all trends</a></p>
<table>
<tr><th>current state</th><td class="state">{verdict_cell(latest.get('verdict', ''))} {escape(state_words(record)
    .partition('; ')[2])}</td></tr>
<tr><th>cadence, severity</th><td>{escape(record['cadence'])}, {escape(record.get('severity', ''))}</td></tr>
<tr><th>last run</th><td>{escape(latest.get('at', ''))}</td></tr>
<tr><th>last failed</th><td class="last-failed">{escape(record['last_failed'] or 'not in the runs on record')}</td></tr>
<tr><th>remediated</th><td class="remediated">{total} time{'s' if total != 1 else ''}
<ul>{done}</ul></td></tr>
<tr><th>latest remediation</th><td>{escape(latest.get('outcome', '') or '-')}</td></tr>
<tr><th>runs on record</th><td>{record['runs']}</td></tr>
</table>
<h2>The last {len(results)} results (oldest first)</h2>
{strip(record, '../')}
<h2>Figures</h2>
<div>{charts or '<p class="note">This check records no figures.</p>'}</div>"""
    return page(f"{record['instance']} on {record['box']}: history", body)


def write_history(reports_dir: Path, key: str, record: dict, series: list[dict], settings: Settings | None) -> Path:
    path = reports_dir / HISTORY_DIR / file_name(key)
    write_atomically(path, render(record, series, settings), *shared_access(settings))
    return path
