"""The breach indicators' readings: listening ports, authorized SSH keys, critical files' checksums and
failed logins, read on the box by probes/remote/securityscan.py (its python3 over SSH; in-process locally).

A configured file that is not there or cannot be read is never "nothing found": the probe raises,
naming the file and what to do, and the check is UNKNOWN. One reading per box and run serves every
instance of a check (the critical files are read, and the baseline with them, in one call).
"""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass

from configuration import Settings
from probes.host import Box
from probes.remote import securityscan

RECORD = "make record-checksums CONFIG={config}"
AS_ROOT = ("run the emergency checks as root, or as a user who may read it (over SSH: the maintenance user "
           "with read access to it)")


@dataclass(frozen=True)
class Listener:
    port: int
    address: str
    owner: str | None  # "name[pid]"; None when this user may not see the process

    def __str__(self) -> str:
        return f"{self.port} on {self.address}" + (f" by {self.owner}" if self.owner else "")


@dataclass(frozen=True)
class AuthorizedKey:
    file: str
    line: int
    type: str | None
    fingerprint: str | None  # None: a line that is not a key this check can read
    comment: str
    problem: str = ""

    def __str__(self) -> str:
        if self.fingerprint is None:
            return f"line {self.line}: {self.problem}"
        comment = f" {self.comment!r}" if self.comment else ""
        return f"{self.fingerprint} ({self.type}{comment}, line {self.line})"


@dataclass(frozen=True)
class FailedLogins:
    count: int
    sources: dict[str, int]
    files: list[str]

    def busiest(self, top: int = 3) -> list[tuple[str, int]]:
        """The sources with most lines, most first."""
        return sorted(self.sources.items(), key=lambda item: (-item[1], item[0]))[:top]


class SecurityProbe:
    """What an intruder changes, read from the paths of [security]."""

    def __init__(self, box: Box, settings: Settings):
        self.box = box
        self.config = settings.security
        self.source = settings.source

    @functools.cached_property
    def listening(self) -> list[Listener]:
        """The TCP sockets listening on the box within [security] port_range, IPv4 and IPv6, by port."""
        low, high = self.config.port_range
        return [Listener(**entry) for entry in self.box.call(securityscan.listening_ports, low, high)]

    @functools.cached_property
    def _keys(self) -> dict:
        return self.box.call(securityscan.authorized_keys, [str(path) for path in self.config.authorized_keys])

    def keys(self, path: str) -> list[AuthorizedKey]:
        """The keys of one authorized_keys file, with their fingerprints."""
        # A path of the run's file that this box's own [[boxes]] table does not list is read on its own.
        reading = self._keys.get(path) or self.box.call(securityscan.authorized_keys, [path])[path]
        if "error" in reading:
            raise _unreadable(reading, f"authorized_keys file {path}",
                              "create it, or remove it from [security] authorized_keys")
        return [AuthorizedKey(file=path, **key) for key in reading["keys"]]

    @functools.cached_property
    def _digests(self) -> dict:
        return self.box.call(securityscan.file_digests, [str(path) for path in self.config.critical_files],
                             str(self.config.checksums_file))

    def digest(self, path: str) -> str:
        """The file's sha256 now."""
        return self._file(path)["sha256"]

    def modified(self, path: str) -> str:
        """The file's last modification, in the box's time as this machine shows it."""
        return datetime.datetime.fromtimestamp(self._file(path)["mtime"]).isoformat(sep=" ", timespec="seconds")

    def _file(self, path: str) -> dict:
        reading = (self._digests["files"].get(path)
                   or self.box.call(securityscan.file_digests, [path], str(self.config.checksums_file))["files"][path])
        if "error" in reading:
            raise _unreadable(reading, f"critical file {path}",
                              "restore it, or remove it from [security] critical_files and record the "
                              "checksums again: " + self.record_command)
        return reading

    def recorded(self, path: str) -> str:
        """The file's sha256 in the baseline."""
        baseline = self._digests["baseline"]
        where = self.config.checksums_file
        if "error" in baseline:
            raise _unreadable(baseline, f"checksum baseline {where}",
                              "record it once the critical files are known good: " + self.record_command)
        if path not in baseline["recorded"]:
            raise LookupError(f"{path} is not in the checksum baseline {where} (listed after it was recorded?): "
                              f"record it again: {self.record_command}")
        return baseline["recorded"][path]

    @property
    def record_command(self) -> str:
        return RECORD.format(config=self.source or "PATH")

    @functools.cached_property
    def failed_logins(self) -> FailedLogins:
        """Failed-login lines of the auth log within [security] failed_logins_window_minutes."""
        config = self.config
        try:
            found = self.box.call(securityscan.failed_logins, str(config.auth_log),
                                  config.failed_logins_window_minutes * 60, list(config.failed_login_patterns))
        except (FileNotFoundError, PermissionError) as error:
            reading = {"error": type(error).__name__, "message": str(error)}
            raise _unreadable(reading, f"auth log {config.auth_log}",
                              "point [security] auth_log at the file sshd logs to (a box with journald "
                              "alone needs rsyslog for it)") from None
        return FailedLogins(**found)


def _unreadable(reading: dict, what: str, fix: str) -> OSError:
    """The error a check is UNKNOWN with: which file, why, and what to do."""
    if reading["error"] == "FileNotFoundError":
        return FileNotFoundError(f"{what} does not exist: {fix}")
    if reading["error"] == "PermissionError":
        return PermissionError(f"{what} cannot be read (permission denied): {AS_ROOT}")
    return OSError(f"{what} cannot be read ({reading['error']}: {reading['message']}): {fix}")


def parameters(settings: Settings) -> dict[str, list]:
    return {"authorized_keys_file": [str(path) for path in settings.security.authorized_keys],
            "critical_file": [str(path) for path in settings.security.critical_files]}
