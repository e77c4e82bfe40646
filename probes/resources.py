"""CPU, memory and disk readings of the box, as the guide's daily health check takes them."""

from __future__ import annotations

import functools
import os
import time

import psutil

from configuration import Settings
from probes.host import Box, box_of
from probes.remote import readers


def _is_pytest(process: psutil.Process) -> bool:
    try:
        return any("pytest" in part for part in process.cmdline())
    except psutil.Error:
        return False


def _suite_tree() -> list[psutil.Process]:
    """The suite's own processes: the outermost pytest above us and all it started.

    That covers xdist workers, and the suite's own tests, which run the checks from a pytest of
    their own: the suite's work must not count as load on the box it is measuring.
    """
    root = psutil.Process(os.getpid())
    for parent in root.parents():
        if not _is_pytest(parent):
            break
        root = parent
    return [root, *root.children(recursive=True)]


def _busy_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def _all_seconds(times) -> float:
    """Guest time is already inside user time on Linux; counting it twice would dilute the reading."""
    return sum(times) - getattr(times, "guest", 0) - getattr(times, "guest_nice", 0)


class ResourceProbe:
    """On this machine: psutil, with the suite's own work left out of the CPU reading. On a box over
    SSH: its /proc and statvfs, read by its python3 (the suite does not run there)."""

    def __init__(self, box: Box, cpu_sample_seconds: float):
        self.box = box
        self.cpu_sample_seconds = cpu_sample_seconds
        self._started: tuple | None = None
        self._disks: dict[str, float] = {}

    def start_cpu_sample(self) -> None:
        """Called when the run starts, so the sample interval passes while the other checks run."""
        if self.box.local:
            self._started = (time.monotonic(), psutil.cpu_times(), _busy_seconds(_suite_tree()))
        else:
            self._started = (time.monotonic(), self.box.call(readers.cpu_times), 0.0)

    @functools.cached_property
    def cpu(self) -> float:
        """One sample per run, shared by the warning and critical checks: sampling costs wall time."""
        if self._started is None:
            self.start_cpu_sample()
        began, before, own_before = self._started
        time.sleep(max(0.0, self.cpu_sample_seconds - (time.monotonic() - began)))
        if not self.box.local:
            return cpu_busy_percent(_ProcStat(before), _ProcStat(self.box.call(readers.cpu_times)), 0.0)
        after, own_after = psutil.cpu_times(), _busy_seconds(_suite_tree())
        return cpu_busy_percent(before, after, own_after - own_before)

    @functools.cached_property
    def memory(self) -> float:
        """Used over total, as `free` computes it in the guide; one reading for both levels."""
        return self.box.call(readers.memory_percent)

    def disk_percent(self, path: str) -> float:
        """Used share of the filesystem holding `path`, as `df` prints it; one reading for both levels."""
        if path not in self._disks:
            self._disks[path] = self.box.call(readers.disk_percent, path)
        return self._disks[path]


class _ProcStat(tuple):
    """/proc/stat's first line (readers.cpu_times) with the names psutil gives the same fields."""

    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")

    def __getattr__(self, name: str) -> float:
        if name not in self.names:
            raise AttributeError(name)
        return self[self.names.index(name)]


def cpu_busy_percent(before, after, own_seconds: float) -> float:
    """Busy share of all cores between two readings, leaving out the suite's own work."""
    elapsed = _all_seconds(after) - _all_seconds(before)
    idle = (after.idle - before.idle) + (getattr(after, "iowait", 0) - getattr(before, "iowait", 0))
    busy = max(0.0, elapsed - idle - own_seconds)
    return round(100.0 * busy / elapsed, 1) if elapsed > 0 else 0.0


def start_cpu_samples(settings: Settings) -> dict[str, ResourceProbe]:
    """Each box's CPU sample, started with the run so that its interval passes while the other checks work; a
    box that does not answer has none (its checks will say so when they look)."""
    started = {}
    for box_settings in settings.boxes():
        probe = ResourceProbe(box_of(box_settings), box_settings.resources.cpu_sample_seconds)
        try:
            probe.start_cpu_sample()
        except Exception:  # noqa: BLE001 - whatever it was, the checks of that box will meet it again
            continue
        started[box_settings.host.name] = probe
    return started


def parameters(settings: Settings) -> dict[str, list]:
    return {"disk_path": settings.resources.disk_paths}
