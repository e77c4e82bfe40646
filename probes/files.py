"""Files past their retention and logs left unrotated, read on the box.

A retention rule is read by the retention walker (probes/remote/expiry.py), the same code that deletes: in this
process when the box is this machine, over SSH as the program's text run by the box's own `python3 -I -S`, so the
check, the plan and the deletion list the same files.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from pathlib import Path

from configuration import Settings
from core import safepath
from core.unread import CouldNotRead
from core.vocabulary import Unread
from probes.host import TIMED_OUT, Box, ReaderFailed
from probes.remote import expiry, readers

# The one line of probes/remote/expiry.py that the box program replaces with core/safepath.py's own text.
_SAFEPATH_IMPORT = re.compile(r"^from core\.safepath import [^\n]*\n", re.MULTILINE)
_FUTURE = "from __future__ import annotations\n"


@functools.cache
def program_text() -> str:
    """The retention walker as one standard-library file for the box's python3 (`expiry.PROGRAM`): this
    suite's core/safepath.py, then probes/remote/expiry.py without its import of it. The same text is installed
    (commands/boxhelpers.py) and run for a listing over SSH, and its sha256 says whether a box has this one."""
    walker = Path(expiry.__file__).read_text()
    if len(_SAFEPATH_IMPORT.findall(walker)) != 1 or walker.count(_FUTURE) != 1:
        raise RuntimeError(f"{expiry.__file__}: expected one `from core.safepath import` line and one "
                           f"`{_FUTURE.strip()}` to build the box program from")
    walker = _SAFEPATH_IMPORT.sub("", walker).replace(_FUTURE, "")
    base = Path(safepath.__file__).read_text().replace(_FUTURE, "")
    return (f"#!/usr/bin/python3 -IS\n"
            f"# The trading box maintenance suite's retention walker, run by root through the maintenance user's\n"
            f"# sudo rule. Written by `make install-box-helpers` from core/safepath.py and probes/remote/expiry.py:\n"
            f"# install it again after updating the suite, never edit it here.\n"
            f"{_FUTURE}\n{base}\n\n# ---- probes/remote/expiry.py\n\n{walker}")


@functools.cache
def program_sha256() -> str:
    return hashlib.sha256(program_text().encode()).hexdigest()


def walker_arguments(rule) -> list[str]:
    """The program's arguments for a rule, after `PROGRAM` (and `--list`): one fixed command per rule."""
    return [str(rule.dir), rule.pattern, str(rule.max_age_days), ",".join(rule.owners),
            expiry.RECURSIVE if rule.recursive else expiry.FLAT]


def walked(rule) -> dict:
    """The rule listed in this process (nothing deleted)."""
    return expiry.expire(str(rule.dir), rule.pattern, rule.max_age_days, rule.owners, rule.recursive, delete=False)


def listing(box: Box, rule) -> dict:
    """The walker's listing of a rule on the box, without root (the maintenance user reads as it always did)."""
    if box.local:
        return walked(rule)
    argv = [box.python, "-I", "-S", "-c", program_text(), "--list", *walker_arguments(rule)]
    return answer_of(box.name, box.run(argv), "the retention walker's listing")


def answer_of(box_name: str, completed, what: str) -> dict:
    """The walker program's JSON, or the exception that says why there is none (as Box.call raises them; what
    never ran was raised by Box.run already)."""
    if completed.returncode == TIMED_OUT:
        raise CouldNotRead(Unread.TIMEOUT, what, _last_line(completed.stderr),
                           "find what keeps the walk slow on the box, or raise [remediation] timeout_seconds", box_name)
    try:
        answer = json.loads(completed.stdout)
    except ValueError:
        raise ReaderFailed(f"box {box_name}: {what} failed (exit {completed.returncode}): "
                           f"{_last_line(completed.stderr or completed.stdout)}") from None
    if "error" in answer:
        kind = {"FileNotFoundError": FileNotFoundError, "LookupError": LookupError}.get(answer["error"], ReaderFailed)
        raise kind(answer["message"])
    return answer


def _last_line(text: str) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else "(nothing said)"


def refusals_text(refused: list[dict]) -> str:
    return "; ".join(f"{item['path']}: {item['why']}" for item in refused)


def left_text(left: dict) -> str:
    """What matched but is not the rule's, counted and never named (it is no business of the rule's report)."""
    return ", ".join(f"{count} {reason}" for reason, count in sorted(left.items()))


def expired_files(rule) -> list[Path]:
    """What a retention rule deletes, read on this machine (the lab's tests compare with it)."""
    return [Path(p) for p in walked(rule)["expired"]]


class FileProbe:
    """The guide's cleanup and rotation criteria, read from the configured directories."""

    def __init__(self, box: Box, settings: Settings):
        self.box = box
        self.rules = {rule.name: rule for rule in settings.retention}
        self.log_dir = settings.paths.log_dir
        self.rotate_after_days = settings.logrotate.rotate_after_days

    def expired(self, rule_name: str) -> list[Path]:
        """The rule's expired files. A rule the walker had to refuse (a link or an unsafe transition on its
        path) could not be looked at safely: that raises, naming what was refused, and nothing acts on it."""
        found = listing(self.box, self.rules[rule_name])
        if found["refused"]:
            raise safepath.UnsafePath(f"retention rule {rule_name}: refused {refusals_text(found['refused'])}")
        return [Path(path) for path in found["expired"]]

    def unrotated(self) -> list[Path]:
        found = self.box.call(readers.unrotated_logs, str(self.log_dir), self.rotate_after_days)
        return [Path(path) for path in found]


def parameters(settings: Settings) -> dict[str, list]:
    return {"retention_rule": [rule.name for rule in settings.retention]}
