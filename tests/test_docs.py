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
