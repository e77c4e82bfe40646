"""What the README and docs cite exists, the coverage table answers for every procedure of the guide, and the
repository keeps none of the guide's prose.

The guide is the operator's document, not ours: it is read from beside the checkout
(`../shared/seed/maintenance-procedures.md`) or from `$MAINTENANCE_GUIDE`, never kept in the repository.
Without it, the coverage table is checked against the procedure names it holds itself.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

DOCS = ["README.md", "docs/DESIGN.md", "docs/coverage.md", "docs/SECURITY.md"]
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


# ---- the guide, where it is -------------------------------------------------------------------------------------

GUIDE_ENV = "MAINTENANCE_GUIDE"
BESIDE = ROOT.parent / "shared" / "seed" / "maintenance-procedures.md"
PROCEDURES_IN_GUIDE = 51  # its #### headings, each a requirement
PROCEDURE = re.compile(r"^#### (\d+\. .+?)\s*(?:\([^)]*\))?\s*$", re.M)  # "1. Minor Updates (Bug fixes, ...)"
# A row's first cell names one procedure or several joined by " / ": "Weekly 3. Security Updates",
# "Update Procedures 1. Minor Updates / 2. Major Updates", "Daily 2. Service Status Verification (the database)".
NAMED = re.compile(r"(\d+\. [^/(|]+?)\s*(?:\([^)]*\))?\s*(?:/|$)")


def guide_path() -> Path | None:
    """`$MAINTENANCE_GUIDE` when set (and then it must exist), else the copy beside the checkout, else None."""
    if os.environ.get(GUIDE_ENV):
        return Path(os.environ[GUIDE_ENV])
    return BESIDE if BESIDE.is_file() else None


GUIDE = guide_path()
needs_guide = pytest.mark.skipif(GUIDE is None, reason=f"the guide is not here: neither ${GUIDE_ENV} nor {BESIDE}")


def coverage_rows() -> list[list[str]]:
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in (ROOT / "docs/coverage.md").read_text().splitlines()
            if line.startswith("| ") and not line.startswith(("| guide procedure", "| ---"))]


def rows_by_procedure() -> dict[str, list[str]]:
    return {name: cells for cells in coverage_rows() for name in NAMED.findall(cells[0])}


def procedures() -> tuple[str, list[str]]:
    """Which list the table is held to, and the list: the guide's headings, or the table's own names."""
    if GUIDE is not None and not GUIDE.is_file():
        return f"${GUIDE_ENV}={GUIDE}, which is not a file", []
    if GUIDE is not None:
        return f"the guide at {GUIDE}", PROCEDURE.findall(GUIDE.read_text())
    return "the table's own procedure names (the guide is not here)", sorted(rows_by_procedure())


SOURCE, PROCEDURES = procedures()


@pytest.mark.parametrize("source", [SOURCE])  # the test's id says which list it used
def test_the_guide_has_its_51_procedures(source):
    assert len(PROCEDURES) == PROCEDURES_IN_GUIDE and len(set(PROCEDURES)) == len(PROCEDURES), (
        f"{source}: {len(PROCEDURES)} procedure(s), {len(set(PROCEDURES))} distinct, where the guide has "
        f"{PROCEDURES_IN_GUIDE}: its #### headings changed, or a row of docs/coverage.md was lost or renamed")


@pytest.mark.parametrize("source", [SOURCE])
def test_every_procedure_has_a_row(source):
    rows = rows_by_procedure()
    missing = [name for name in PROCEDURES if not any(row.endswith(name) for row in rows)]
    assert not missing, f"procedures of {source} with no row in docs/coverage.md: {missing}"
    stale = sorted(name for name in rows if not any(name.endswith(procedure) for procedure in PROCEDURES))
    assert not stale, f"rows of docs/coverage.md that name no procedure of {source}: {stale}"


def test_no_row_is_open_or_empty():
    rows = rows_by_procedure()
    open_rows = sorted(name for name, cells in rows.items() if any(cell.startswith("open") for cell in cells[1:]))
    assert not open_rows, f"rows still open in docs/coverage.md: {open_rows}"
    empty = sorted(name for name, cells in rows.items() if not any(cell.strip("—- ") for cell in cells[1:]))
    assert not empty, f"rows of docs/coverage.md that name no implementation: {empty}"


# ---- none of its prose in the repository ------------------------------------------------------------------------

RUN = 20  # consecutive words: a sentence of the guide's, not a name or a threshold it gives
FENCE = re.compile(r"^```.*?^```[^\n]*$", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
WORD = re.compile(r"\w+")


def prose_runs(guide: str) -> set[tuple[str, ...]]:
    """Every run of RUN words of the guide's prose; code blocks and inline commands cut a run, as they are not
    prose: a run never spans one."""
    runs = set()
    for block in FENCE.split(guide):
        for piece in INLINE_CODE.split(block):
            words = WORD.findall(piece.lower())
            runs.update(tuple(words[i:i + RUN]) for i in range(len(words) - RUN + 1))
    return runs


def copied_from(text: str, runs: set[tuple[str, ...]]) -> str | None:
    """The first run of the guide's prose in `text`, whatever its line breaks and comment marks, or None."""
    words = WORD.findall(text.lower())
    return next((" ".join(words[i:i + RUN]) for i in range(len(words) - RUN + 1)
                 if tuple(words[i:i + RUN]) in runs), None)


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, timeout=60)
    if listed.returncode != 0:
        pytest.skip(f"not a git checkout ({listed.stderr.decode(errors='replace').strip()}): no tracked files")
    return [ROOT / name for name in listed.stdout.decode().split("\0") if name]


SAMPLE_GUIDE = ("# A guide\n\nOne two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                "sixteen seventeen eighteen nineteen twenty twentyone.\n\n```bash\necho one two three\n```\n")


def test_a_run_of_the_guides_prose_is_found_across_lines_and_comment_marks():
    runs = prose_runs(SAMPLE_GUIDE)
    copied = "x = 1\n# two three four five six seven eight nine ten\n# eleven twelve thirteen fourteen fifteen " \
             "sixteen seventeen eighteen nineteen twenty twentyone\n"
    assert copied_from(copied, runs) == "two three four five six seven eight nine ten eleven twelve thirteen " \
                                        "fourteen fifteen sixteen seventeen eighteen nineteen twenty twentyone"
    assert copied_from("three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
                       "seventeen eighteen nineteen twenty twentyone", runs) is None  # 19 words: no run


def test_code_blocks_and_commands_are_no_prose():
    code = " ".join(f"w{n}" for n in range(40))
    assert prose_runs(f"Run `{code}` then:\n```bash\n{code}\n```\n") == set()
    assert len(prose_runs(f"Run {code} then.\n")) == 40 + 2 - RUN + 1  # the same words as prose


@needs_guide
def test_no_tracked_file_reproduces_the_guides_prose():
    assert GUIDE.is_file(), f"${GUIDE_ENV}={GUIDE} is not a file: unset it, or name the guide"
    runs = prose_runs(GUIDE.read_text())
    assert runs, f"no prose found in {GUIDE}: the test would pass on anything"
    copies = {}
    for path in tracked_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
            continue  # a binary file, a submodule, a file deleted in the work tree
        if (run := copied_from(text, runs)) is not None:
            copies[str(path.relative_to(ROOT))] = run
    assert not copies, "files that reproduce the guide's prose (20 words or more): " + "; ".join(
        f"{name}: \"{run}\"" for name, run in sorted(copies.items()))
