"""The [rotation] section: the guide's quarterly "Rotate all API keys and secrets", audited.

Each secret's last rotation is the newest of its files' modification on the box and the date an operator
attested (`make attest-rotation`); its age is held to `warning_days` and `max_age_days`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from configuration.section import Section
from configuration.security import BoxPath

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)]


class RotatedSecret(Section):
    """A secret the guide rotates every quarter, and the files on the box rewritten when it is."""

    name: Name = Field(examples=["exchange-api-key"],
                       description="The secret's name, as make attest-rotation WHAT=... gives it.")
    files: list[BoxPath] = Field(default_factory=list, examples=[["/opt/trading-agent/.env"]],
                                 description="The files on the box a rotation rewrites: the newest modification of "
                                             "them counts as a rotation.")


class Rotation(Section):
    """KEY-001 (quarterly; the guide's Quarterly 3 \"Rotate all API keys and secrets\"): each secret's last
    rotation is the newest of its files' modification on the box and the date attested after rotating it:
      make attest-rotation WHAT=exchange-api-key WHO=name [WHEN=YYYY-MM-DD] CONFIG=...
    Rotating is yours; the suite only audits it."""

    per_box = True

    max_age_days: int = Field(default=90, ge=1, le=3660,
                              description="A secret last rotated more than this many days ago fails as critical.")
    warning_days: int = Field(default=80, ge=1, le=3660,
                              description="More than this many days ago, as a warning; at most max_age_days.")
    secrets: list[RotatedSecret] = Field(
        default_factory=lambda: [RotatedSecret(name="exchange-api-key", files=[Path("/opt/trading-agent/.env")]),
                                 RotatedSecret(name="tunnel-key", files=[Path("/opt/trading-agent/keys/oracle_key")])],
        description="The secrets rotated every quarter.")

    @model_validator(mode="after")
    def _levels(self) -> Rotation:
        if self.warning_days > self.max_age_days:
            raise ValueError(f"warning_days ({self.warning_days}) must not exceed max_age_days ({self.max_age_days})")
        names = [secret.name for secret in self.secrets]
        if len(set(names)) != len(names):
            raise ValueError(f"secrets: a name is listed twice ({names})")
        return self

    def secret(self, name: str) -> RotatedSecret | None:
        return next((secret for secret in self.secrets if secret.name == name), None)
