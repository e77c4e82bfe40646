"""Every lab and box the tests start sits below the kernel's ephemeral port range.

A port in that range (32768-60999 on Linux by default) may be taken at any moment as the local end of
some outgoing connection, and a lab that binds it then fails with "Address already in use" by luck.
"""

from __future__ import annotations

import re
from pathlib import Path

from conftest import ROOT

LAB_SPAN = 500  # a lab binds base+0 .. base+444
BASE = re.compile(r"PORT(?:_BASE|S)\w*\s*=\s*(?:int\(os\.environ\.get\(\"\w+\",\s*\")?(\d{4,5})")


def ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except OSError:
        return 32768  # Linux's default


def test_every_port_base_is_below_the_ephemeral_range():
    bases = {f"{path.relative_to(ROOT)}: {match.group(1)}": int(match.group(1))
             for folder in ("tests", "bench") for path in sorted((ROOT / folder).glob("*.py"))
             for match in BASE.finditer(path.read_text())}
    assert len(bases) >= 10, f"the pattern found only {sorted(bases)}: has the way tests name their port base changed?"
    low = min(ephemeral_low(), 32768)
    inside = sorted(where for where, base in bases.items() if base + LAB_SPAN > low)
    assert not inside, f"port bases within {LAB_SPAN} of the ephemeral range (from {low}): {inside}"
