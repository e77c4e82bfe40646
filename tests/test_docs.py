"""What the README and docs cite exists: a stale reference sends a newcomer looking for nothing."""

from __future__ import annotations

import re

import pytest

from conftest import ROOT

DOCS = ["README.md", "docs/DESIGN.md", "docs/coverage.md", "reports/README.md"]
# `folder/file.ext` or `folder/` in backticks, naming a file of this repository (not the box's /paths).
CITED = re.compile(r"`((?:[a-z_]+/)+(?:[A-Za-z0-9_.-]+\.(?:py|md|toml|json|sh|txt|lock))?)`")


def cited(doc: str) -> list[str]:
    return sorted(set(CITED.findall((ROOT / doc).read_text())))


@pytest.mark.parametrize("doc", DOCS)
def test_every_cited_path_exists(doc):
    missing = [path for path in cited(doc) if not (ROOT / path).exists()]
    assert not missing, f"{doc} cites what the repository does not have: {', '.join(missing)}"


def test_the_pattern_finds_citations():
    assert "alerts/dispatch.py" in cited("docs/DESIGN.md")


GUIDE = ROOT / "docs" / "maintenance-procedures.md"
PROCEDURE = re.compile(r"^#### (\d+\. .+?)\s*(?:\([^)]*\))?\s*$", re.M)  # "1. Minor Updates (Bug fixes, ...)"
# A row's first cell names one procedure or several joined by " / ": "Weekly 3. Security Updates",
# "Update Procedures 1. Minor Updates / 2. Major Updates", "Daily 2. Service Status Verification (the database)".
NAMED = re.compile(r"(\d+\. [^/(|]+?)\s*(?:\([^)]*\))?\s*(?:/|$)")


def coverage_rows() -> list[list[str]]:
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in (ROOT / "docs/coverage.md").read_text().splitlines()
            if line.startswith("| ") and not line.startswith(("| guide procedure", "| ---"))]


def test_every_procedure_of_the_guide_has_a_row_and_no_row_is_open():
    procedures = PROCEDURE.findall(GUIDE.read_text())
    rows = {name: cells for cells in coverage_rows() for name in NAMED.findall(cells[0])}
    assert len(procedures) == 51 and len(set(procedures)) == len(procedures), "the guide's #### headings changed"
    missing = [name for name in procedures if not any(row.endswith(name) for row in rows)]
    assert not missing, f"procedures of the guide with no row in docs/coverage.md: {missing}"
    open_rows = sorted(name for name, cells in rows.items() if any(cell.startswith("open") for cell in cells[1:]))
    assert not open_rows, f"rows still open in docs/coverage.md: {open_rows}"
    stale = sorted(name for name in rows if not any(name.endswith(procedure) for procedure in procedures))
    assert not stale, f"rows of docs/coverage.md that name no procedure of the guide: {stale}"
