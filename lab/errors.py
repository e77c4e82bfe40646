"""Errors the lab expects and explains: the CLI prints them without a traceback.

Each carries the exit code the CLI returns, so `fault inject nonsense` exits 2 like a usage error.
"""


class LabError(Exception):
    """Something the operator can fix (lab not up, port taken, ...); the message says what."""

    exit_code = 1


class LabNotUp(LabError):
    """The lab's supervisord does not answer."""

    exit_code = 3


class FaultError(LabError):
    """An unknown fault name, or a fault this lab cannot inject (disk-full without tmpfs)."""

    exit_code = 2
