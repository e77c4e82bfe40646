"""The box as a system: its service manager's failed units, its uptime, the journal's errors (Monthly 1), and
its memory and disk I/O (Manual Weekly 3: the guide's `free -h`, `/proc/meminfo` and `iostat -x 1 5`).

Read on the box (probes/remote/reviewscan.py, probes/remote/weeklyscan.py); only the figures travel.
"""

from __future__ import annotations

from dataclasses import dataclass

from configuration import Settings
from configuration.performance import WeeklyReview
from probes.endpoints import ProbeError
from probes.host import Box, NotApplicable
from probes.remote import reviewscan, weeklyscan

# supervisord's states of a program that failed (systemd's `failed`): it gave up (FATAL), keeps dying
# (BACKOFF) or lost track of it (UNKNOWN). STOPPED is an operator's stop, as an inactive unit is not failed.
SUPERVISOR_FAILED = ("FATAL", "BACKOFF", "UNKNOWN")

def parse_systemctl_failed(text: str) -> list[str]:
    """`systemctl --failed --no-legend --plain --full`: one unit a line, its name first."""
    return [line.split()[0] for line in text.splitlines() if line.strip()]


def parse_supervisor_failed(text: str) -> list[str]:
    """`supervisorctl status`: NAME STATE ...; the programs in a failed state, as NAME (STATE)."""
    found = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[1] in SUPERVISOR_FAILED:
            found.append(f"{words[0]} ({words[1]})")
    return found


@dataclass(frozen=True)
class JournalErrors:
    count: int
    last: list[str]
    covers_window: bool = True  # the journal holds an entry older than the window: the count is the window's


def journal_entries(text: str) -> list[str]:
    """`journalctl -q -o short-iso`: one entry a line (a message's own new lines are indented, not counted)."""
    return [line for line in text.splitlines() if line.strip() and not line.startswith((" ", "\t"))]


def parse_journal(text: str, last: int, covers_window: bool = True) -> JournalErrors:
    entries = journal_entries(text)
    return JournalErrors(len(entries), entries[-last:] if last else [], covers_window)


class SystemReview:
    def __init__(self, box: Box, settings: Settings):
        self.box = box
        self.settings = settings
        self.config = settings.monthly_review

    def uptime_seconds(self) -> float:
        return self.box.call(reviewscan.uptime_seconds)

    def failed_units(self) -> list[str]:
        """What the service manager says has failed (systemd's units, supervisord's programs)."""
        if self.settings.host.service_manager == "systemd":
            argv = ["systemctl", "--failed", "--no-legend", "--plain", "--full"]
            result = self.box.run(argv, timeout=self.config.timeout_seconds)
            if result.returncode != 0:
                raise ProbeError(f"{' '.join(argv)} failed (exit {result.returncode}): {_said(result)}")
            return parse_systemctl_failed(result.stdout)
        argv = [*self.settings.host.supervisorctl, "status"]
        result = self.box.run(argv, timeout=self.config.timeout_seconds)
        if result.returncode not in (0, 3):  # 3: some program is not running, which is an answer
            raise ProbeError(f"supervisorctl status failed (exit {result.returncode}): {_said(result)}")
        return parse_supervisor_failed(result.stdout)

    def journal_errors(self) -> JournalErrors:
        if self.settings.host.service_manager != "systemd":
            raise NotApplicable("no systemd journal: the services are supervisord's ([host] service_manager), whose "
                                "programs' logs are theirs")
        days = self.config.journal_days
        argv = ["journalctl", "--since", f"{days} days ago", "-p", "err", "--no-pager", "-q", "-o", "short-iso"]
        result = self.box.run(argv, timeout=self.config.timeout_seconds)
        if result.returncode == 127:
            raise NotApplicable("journalctl is not installed on the box: no systemd journal to read")
        if result.returncode != 0:
            raise ProbeError(f"{' '.join(argv)} failed (exit {result.returncode}): {_said(result)} (the maintenance "
                             f"user must be in the systemd-journal or adm group to read the system's journal)")
        # Does the journal reach back past the window (a volatile journal begins at the last boot)?
        older = self.box.run(["journalctl", "--until", f"{days} days ago", "-n", "1", "--no-pager", "-q",
                              "-o", "short-iso"], timeout=self.config.timeout_seconds)
        return parse_journal(result.stdout, self.config.journal_last,
                             older.returncode == 0 and bool(journal_entries(older.stdout)))


def _said(result) -> str:
    text = (result.stderr or result.stdout).strip()
    return text.splitlines()[-1] if text else "no output"

def iostat_x(before: list[int], after: list[int], seconds: float) -> dict:
    """`iostat -x`'s figures between two /proc/diskstats readings `seconds` apart: r/s, w/s, rkB/s, wkB/s,
    r_await, w_await and await (ms per request; None without requests) and %util (capped at 100)."""
    delta = [now - then for now, then in zip(after, before, strict=True)]
    reads, _, sectors_read, ms_reading, writes, _, sectors_written, ms_writing, _, ms_busy, _ = delta
    return {
        "r_per_s": reads / seconds, "w_per_s": writes / seconds,
        "rkb_per_s": sectors_read * 512 / 1024 / seconds, "wkb_per_s": sectors_written * 512 / 1024 / seconds,
        "r_await_ms": ms_reading / reads if reads else None,
        "w_await_ms": ms_writing / writes if writes else None,
        "await_ms": (ms_reading + ms_writing) / (reads + writes) if reads + writes else None,
        "util_percent": min(100.0, 100.0 * ms_busy / (seconds * 1000)),
    }


class SystemReadings:
    """Manual Weekly 3: the guide's `free -h`, `/proc/meminfo` and `iostat -x 1 5`, read on the box."""

    def __init__(self, box: Box, review: WeeklyReview):
        self.box = box
        self.review = review

    def memory(self) -> dict:
        """The meminfo figures in kB (weeklyscan.meminfo)."""
        return self.box.call(weeklyscan.meminfo)

    def disk_io(self) -> dict:
        """{"name", "device", "seconds", "figures"} (iostat_x), or {"no_disk"} when no disk holds io_path."""
        sample = self.box.call(weeklyscan.io_sample, str(self.review.io_path), self.review.io_sample_seconds)
        if "no_disk" in sample:
            return sample
        return {**sample, "figures": iostat_x(sample["before"], sample["after"], sample["seconds"])}
