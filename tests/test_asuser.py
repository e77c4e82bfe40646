"""core/asuser.py: work done with another user's rights from root, in a child that reports back."""

from __future__ import annotations

import os

import pytest

from core.asuser import as_user

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user (nobody)")
NOBODY = 65534


def test_the_work_runs_as_that_user_and_its_answer_comes_back():
    assert as_user(NOBODY, NOBODY, [], lambda: f"{os.getuid()} {os.getgid()} {os.getgroups()}".encode()) == (
        None, b"65534 65534 []")


def test_what_the_work_raised_comes_back_by_name_with_its_words(tmp_path):
    (tmp_path / "root-only").write_text("")
    (tmp_path / "root-only").chmod(0o600)
    kind, said = as_user(NOBODY, NOBODY, [], lambda: (tmp_path / "root-only").read_bytes())
    assert kind == "PermissionError" and b"Permission denied" in said
