"""When each secret of [rotation] was last rotated: the newest of its files' modification on the box and
the rotation an operator attested (`make attest-rotation`, commands/attest.py).

A file's modification time says it was rewritten, which a rotation does (a new key in the .env, a new
tunnel key); an attestation says so in an operator's words, for a secret rotated where the box cannot
see it (at the exchange, in a password manager). The attestations are kept beside the suite's state
([policy] state_dir), per box, one JSON file written whole.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from configuration import Settings
from configuration.rotation import RotatedSecret
from probes import attestations
from probes.host import Box
from probes.remote import pentestscan

ATTESTATIONS = "rotations.json"
COMMAND = "make attest-rotation"


def attestations_path(settings: Settings) -> Path:
    return attestations.under_suite(settings.policy.state_dir / ATTESTATIONS)


def attest(path: Path, box: str, secret: str, who: str, when: datetime.datetime) -> dict:
    """Record a rotation (the newest for that secret wins over an older one attested later)."""
    entry = {"when": when.isoformat(timespec="seconds"), "who": who,
             "recorded": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    return attestations.record(path, COMMAND, box, secret, entry)


@dataclass(frozen=True)
class LastRotation:
    secret: str
    at: float  # seconds since the epoch
    evidence: str  # what says so: "attested by NAME", "PATH modified"

    def age_days(self, now: float) -> float:
        return (now - self.at) / 86400

    @property
    def date(self) -> str:
        return datetime.datetime.fromtimestamp(self.at, datetime.UTC).strftime("%Y-%m-%d")


class RotationProbe:
    def __init__(self, box: Box, settings: Settings):
        self.box = box
        self.config = settings.rotation
        self.path = attestations_path(settings)
        self.box_name = settings.host.name

    def attested(self, secret: RotatedSecret) -> LastRotation | None:
        entry = attestations.read(self.path, COMMAND).get(self.box_name, {}).get(secret.name)
        if entry is None:
            return None
        when = datetime.datetime.fromisoformat(entry["when"])
        return LastRotation(secret.name, when.timestamp(), f"attested by {entry['who']}")

    def modified(self, secret: RotatedSecret) -> LastRotation | None:
        """The newest modification of the secret's files; a file that cannot be read raises, naming it."""
        readings = self.box.call(pentestscan.file_mtimes, [str(path) for path in secret.files])
        newest = None
        for path, reading in readings.items():
            if "error" in reading:
                raise OSError(f"{secret.name}: {path} cannot be read ({reading['error']}: {reading['message']}): "
                              "fix [rotation] secrets' files, or run as a user who may read it")
            if newest is None or reading["mtime"] > newest.at:
                newest = LastRotation(secret.name, reading["mtime"], f"{path} modified")
        return newest

    def last(self, name: str) -> LastRotation:
        secret = self.config.secret(name)
        if secret is None:
            raise LookupError(f"no secret {name!r} in [rotation] secrets")
        found = [found for found in (self.modified(secret), self.attested(secret)) if found is not None]
        if not found:
            raise LookupError(f"{name}: no file in [rotation] secrets to read and no rotation attested: attest the "
                              f"last one: make attest-rotation WHAT={name} WHO=you WHEN=YYYY-MM-DD CONFIG=...")
        return max(found, key=lambda rotation: rotation.at)


def parameters(settings: Settings) -> dict[str, list]:
    return {"rotated_secret": [secret.name for secret in settings.rotation.secrets]}
