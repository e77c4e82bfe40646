"""Quarterly 3: Security Review, the guide's "Rotate all API keys and secrets".

Each secret of [rotation] was rotated within the quarter: its last rotation is the newest of its
files' modification on the box and the rotation an operator attested (`make attest-rotation`). The
rotation itself is the operator's (the guide's rotate-all-secrets.sh: new keys at the exchange, a new
tunnel key); no remediation runs. The review's certificates are TLS-001, monthly
(checks/test_monthly_penetration.py).
"""

import time

import pytest

pytestmark = pytest.mark.quarterly

LIMITS = {"warning": "warning_days", "critical": "max_age_days"}


@pytest.mark.parametrize("level", ["warning", "critical"])
@pytest.mark.check("KEY-001", why="a key that is never rotated stays useful to whoever copied it once")
def test_secret_rotated_within_the_quarter(rotation, settings, rotated_secret, level):
    limit = getattr(settings.rotation, LIMITS[level])
    last = rotation.last(rotated_secret)
    age = last.age_days(time.time())
    assert age <= limit, (
        f"{rotated_secret} last rotated {age:.0f} days ago ({last.date}, {last.evidence}); {level} threshold "
        f"{limit} days (over by {age - limit:.0f}): rotate it, then make attest-rotation WHAT={rotated_secret} "
        "WHO=you")
