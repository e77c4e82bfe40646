"""Work done with another user's rights, from a root process: a forked child that becomes that user and reports.

A fork, not a new interpreter: the child needs nothing that user may not read (the suite's checkout may be
closed to it). Standard library only: the box-side readers use it too (core/rootfiles.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable


def as_user(uid: int, gid: int, groups: list[int], work: Callable[[], bytes | None]) -> tuple[str | None, bytes]:
    """`work()` in a child that has become uid/gid with `groups` (none: no supplementary group).

    Returns (None, what work returned) when it succeeded; otherwise (the name of what it raised, its words), or
    ("died", b"") when the child ended without a word."""
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe and its exit status
        status = 1
        try:
            os.close(reading)
            try:
                os.setgroups(groups)
                os.setgid(gid)
                os.setuid(uid)
                answer, status = b"\n" + (work() or b""), 0
            except BaseException as error:  # noqa: BLE001 - whatever it was, the parent says it
                answer = f"{type(error).__name__}\n{error}".encode(errors="replace")
            while answer:
                answer = answer[os.write(writing, answer):]
        finally:
            os._exit(status)
    os.close(writing)
    with os.fdopen(reading, "rb") as pipe:
        said = pipe.read()
    _, status = os.waitpid(child, 0)
    kind, _, rest = said.partition(b"\n")
    if status == 0 and not kind:
        return None, rest
    return kind.decode(errors="replace") or "died", rest
