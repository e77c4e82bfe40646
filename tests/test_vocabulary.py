"""One vocabulary: the words are defined in core/vocabulary.py and used from there."""

from __future__ import annotations

import ast
import configparser

import pytest
from test_layers import LAYERS

from conftest import ROOT
from core.vocabulary import ActionStatus, AlertKind, Cadence, Mode, Recheck, Severity, Verdict

WORDS = {str(member) for enum in (Verdict, AlertKind, Mode, ActionStatus, Recheck, Severity, Cadence)
         for member in enum}


def markers(ini: str) -> set[str]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / ini)
    return {line.split(":")[0].split("(")[0].strip() for line in parser["pytest"]["markers"].splitlines() if line.strip()}


def test_pytest_ini_declares_exactly_the_cadences_as_markers():
    declared = markers("pytest.ini") - {"check", "remediate"}
    assert declared == set(Cadence), f"pytest.ini markers {sorted(declared)} differ from Cadence {sorted(Cadence)}"


def suite_files():
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            if path != ROOT / "core" / "vocabulary.py":
                yield path


def bare_words_compared(path) -> list[str]:
    """String literals of the vocabulary in comparisons (`x == "failed"`, `x in ("failed", ...)`)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                elements = operand.elts if isinstance(operand, (ast.Tuple, ast.List, ast.Set)) else [operand]
                found += [f"{path.name}:{node.lineno} {e.value!r}" for e in elements
                          if isinstance(e, ast.Constant) and e.value in WORDS]
    return found


@pytest.mark.parametrize("path", list(suite_files()), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_bare_vocabulary_word_is_compared(path):
    found = bare_words_compared(path)
    assert not found, "compare with core.vocabulary members, not bare strings: " + ", ".join(found)


def test_a_bare_word_is_caught(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('if verdict in ("failed", "unknown"):\n    pass\n')
    assert len(bare_words_compared(module)) == 2
