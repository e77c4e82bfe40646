"""The [paths], [logrotate] and [trading] sections: the agent's dated logs, where they are, how they are
rotated, and what today's trading log must show.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from configuration.section import Section


class Paths(Section):
    """Where the agent keeps its dated logs (trading-DATE.log, error-DATE.log) and its list of known errors."""

    per_box = True

    log_dir: Path = Field(default=Path("/var/log/trading-agent"),
                          description="The agent's log directory: today's trading and error logs, and the dated "
                                      "logs the weekly review reads.")
    known_errors: Path = Field(default=Path("/opt/trading-agent/config/known-errors.txt"),
                               description="The error codes already known, one per line: a code in today's error "
                                           "log that is not listed here is a new error type.")


class Logrotate(Section):
    """The daily \"Log Rotation and Cleanup\": the agent's dated logs are rotated (compressed) by logrotate."""

    per_box = True

    rotate_after_days: int = Field(default=1, ge=0, le=366,
                                   description="Dated logs in [paths] log_dir older than this many full days must "
                                               "have been rotated (compressed).")
    command: list[str] = Field(default=["logrotate", "-f", "/etc/logrotate.d/trading-agent"], min_length=1,
                               description="What the remediation runs to rotate them, as an argument list.")


class Trading(Section):
    """What today's trading log must show."""

    per_box = True

    min_trades_today: int = Field(default=1, ge=0, le=1_000_000,
                                  description="Fewer trades executed today than this fails (the guide's \"No trades "
                                              "executed today - check system\").")
