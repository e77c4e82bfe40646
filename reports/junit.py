"""What the JUnit XML holds beyond pytest's own: the run's facts as global properties.

Per-check properties reach it as `user_properties`. `_pytest.junitxml.xml_key` and the LogXML's
`logfile` and `suite_name` are pytest internals: tests/test_pinned_internals.py fails loudly if they move.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _pytest.junitxml import xml_key

from core.vocabulary import RunFact


def record_run_facts(config: pytest.Config, facts: dict[RunFact, str], suite_name: str) -> None:
    """A fixed finding stays a JUnit failure (CI must still see it), with its `verdict` property saying
    fixed; the test suite is named by the run's cadence."""
    xml = config.stash.get(xml_key, None)
    if xml is not None:
        xml.suite_name = suite_name
        for fact, value in facts.items():
            xml.add_global_property(fact.junit_name, value)


def point_at(config: pytest.Config, path: Path) -> None:
    """junitxml prints "generated xml file: PATH" after the rename: name the published file."""
    xml = config.stash.get(xml_key, None)
    if xml is not None:
        xml.logfile = str(path)
