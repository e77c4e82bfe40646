"""Could not read is not broken: one exception for every reading that did not happen, with its cause and the fix.

A probe that could not read raises `CouldNotRead`; only a reading that shows the thing broken may fail a check.
The decision makes it UNKNOWN, remediates nothing and, for a cause that stops the whole box (`Unread.whole_box`),
marks the box unreachable for the rest of the run.
"""

from __future__ import annotations

from core.vocabulary import Unread


class CouldNotRead(Exception):
    """`what` could not be read on `box` for `cause`; `detail` is what the other side said, `fix` what to do."""

    def __init__(self, cause: Unread, what: str, detail: str = "", fix: str = "", box: str = ""):
        self.cause, self.what, self.detail, self.fix, self.box = Unread(cause), what, detail, fix, box
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f" on box {self.box}" if self.box else ""
        said = f" ({self.detail})" if self.detail else ""
        fix = f": {self.fix}" if self.fix else ""
        return f"could not read {self.what}{where}: {self.cause}{said}{fix}"

    def __reduce__(self):  # xdist and multiprocessing carry it whole
        return CouldNotRead, (self.cause, self.what, self.detail, self.fix, self.box)
