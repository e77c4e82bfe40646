"""The [monthly_review] section: the guide's Monthly 1, the box as a system (its failed units, its uptime and
its journal's errors of the month).
"""

from __future__ import annotations

from pydantic import Field

from configuration.section import Section


class MonthlyReview(Section):
    """Monthly 1, the comprehensive system review (REV-001..003): the failed units (systemctl --failed;
    supervisord's FATAL and BACKOFF programs), the uptime, and the journal's errors (-p err) of the month."""

    per_box = True

    journal_days: int = Field(default=30, ge=1, le=366,
                              description="The journal's errors of the last this many days are counted (journalctl "
                                          "--since \"N days ago\"; the guide's 30).")
    journal_last: int = Field(default=5, ge=0, le=100,
                              description="How many of the newest journal errors the report shows.")
    timeout_seconds: float = Field(default=60, gt=0, le=600,
                                   description="How long reading the units and the journal may take.")
