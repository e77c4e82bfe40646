"""The suite's notion of now.

MAINTENANCE_CLOCK (epoch seconds) replaces the wall clock: it lets an operator replay a schedule
and lets the suite's tests run 24 "hourly" runs in seconds. Never set it in production.
"""

from __future__ import annotations

import os
import time

ENV_VAR = "MAINTENANCE_CLOCK"


def now() -> float:
    value = os.environ.get(ENV_VAR)
    return float(value) if value else time.time()
