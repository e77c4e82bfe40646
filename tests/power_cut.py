"""A box whose power goes off in the middle of a run: a plugin that tests/test_box_suite.py loads into the suite's
run (`-p power_cut`, this directory on PYTHONPATH). It stands in for the plug being pulled, which a box in
namespaces cannot have: before check number POWER_CUT_AFTER + 1 of box POWER_CUT_BOX starts, every process of
that box is frozen at once through its cgroup (POWER_CUT_FREEZE, its cgroup.freeze), its sshd and the run's open
connection to it included. Nothing in it answers any more, as nothing answers on a box that is off; the test
thaws it afterwards, and the box's journal then says what reached it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

STARTED: list[str] = []  # the box's checks that started before the power went off, and the one at which it did


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    params = getattr(getattr(item, "callspec", None), "params", {})
    if params.get("settings") != os.environ["POWER_CUT_BOX"]:
        return
    STARTED.append(item.nodeid)
    if len(STARTED) == int(os.environ["POWER_CUT_AFTER"]) + 1:
        Path(os.environ["POWER_CUT_FREEZE"]).write_text("1")
