"""The audit trail's pages share one look: self-contained HTML, the style inline, nothing fetched from
anywhere (no script, font or image from a URL), verdicts coloured as in the run reports (report.css)."""

from __future__ import annotations

import html

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1f2328; }
h1 { font-size: 1.4em; margin: 0 0 .3em; } h2 { font-size: 1.15em; margin: 1.4em 0 .4em; }
table { border-collapse: collapse; } th, td { padding: .2em .6em; border-bottom: 1px solid #ddd; text-align: left; }
th { background: #f3f4f6; } td { white-space: nowrap; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.failed { color: #b42318; font-weight: bold; } .unknown { color: #8a5a00; font-weight: bold; }
.fixed { color: #1d4ed8; font-weight: bold; } .passed { color: #1a7f37; }
.waived, .skipped, .pruned, .missing, .note { color: #555; }
.altered { color: #b42318; }
.strip span { display: inline-block; width: 1.1em; text-align: center; margin-right: 1px; color: #fff;
  font-size: .8em; }
.strip .v-passed { background: #1a7f37; } .strip .v-failed { background: #b42318; }
.strip .v-unknown { background: #b7791f; } .strip .v-fixed { background: #1d4ed8; }
.strip .v-waived, .strip .v-skipped { background: #888; }
nav { margin: .3em 0; }
nav label { cursor: pointer; border: 1px solid #ccc; border-radius: 3px; padding: 0 .4em; margin-right: .2em; }
input.filter { display: none; }
svg { background: #fafafa; border: 1px solid #ddd; margin: .3em 1em .3em 0; }
svg text { font-size: 11px; fill: #444; }
"""


def escape(value: object) -> str:
    return html.escape(str(value), quote=True)


def page(title: str, body: str, extra_style: str = "") -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{STYLE}{extra_style}</style></head>\n<body>\n{body}\n</body></html>\n")


def verdict_cell(verdict: str) -> str:
    return f'<span class="{escape(verdict)}">{escape(verdict)}</span>'
