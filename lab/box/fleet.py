"""Several boxes side by side, and the one configuration file that watches them all over SSH.

`python -m lab box fleet up N` boots N boxes in FLEET_DIR/box-1..N (FLEET_DIR default <repo>/.fleet;
ports from FLEET_PORT_BASE, default 30000, then +100 a box)
and writes FLEET_DIR/maintenance.toml: the first box's file with each box's own tables under
[[boxes]] (as README "Several boxes" describes), what the run writes under FLEET_DIR/outside.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from lab import configfile
from lab.box.config import _sections
from lab.box.core import Box
from lab.paths import REPO

DEFAULT_PORT_BASE = 30000  # the lab 23000, a box 28000, the suite's tests 24000-29744
STEP = 100  # ports of box n: base + STEP * (n - 1) ... + 444
# What differs per box; the rest (alerts, policy, reports, remediation) is the run's.
BOX_TABLES = ("host", "api", "dashboard", "tunnel", "exchange", "database", "diagnostics", "services", "paths",
              "retention", "logrotate")


MAX_BOXES = 9


def default_fleet_dir() -> Path:
    return Path(os.environ.get("FLEET_DIR") or REPO / ".fleet").expanduser().resolve()


def default_port_base() -> int:
    return int(os.environ.get("FLEET_PORT_BASE", DEFAULT_PORT_BASE))


def up(fleet_dir: Path, count: int, port_base: int, log) -> Path:
    """Boot `count` boxes (or return running ones to healthy) and write the fleet's configuration."""
    from lab.errors import LabError

    if not 1 <= count <= MAX_BOXES:
        raise LabError(f"a fleet has 1 to {MAX_BOXES} boxes, not {count}")
    for box in existing(fleet_dir)[count:]:  # fewer than last time: the extra ones go
        box.down()
    fleet = boxes(fleet_dir, count, port_base)
    for box in fleet:
        log(f"{box.paths.root.name}: {box.up().splitlines()[0]}")
    return fleet_config(fleet, fleet_dir / "maintenance.toml")


def down(fleet_dir: Path) -> list[str]:
    return [box.down() for box in existing(fleet_dir)]


def boxes(fleet_dir: Path, count: int, port_base: int = DEFAULT_PORT_BASE) -> list[Box]:
    return [Box(fleet_dir / f"box-{n}", port_base + STEP * (n - 1)) for n in range(1, count + 1)]


def existing(fleet_dir: Path) -> list[Box]:
    """The boxes a fleet directory holds, by their recorded port base."""
    import json

    found = []
    for directory in sorted(fleet_dir.glob("box-*"), key=lambda p: int(p.name.split("-")[1])):
        state = directory / "box" / "state.json"
        base = json.loads(state.read_text()).get("port_base") if state.exists() else None
        found.append(Box(directory, base if base is not None else DEFAULT_PORT_BASE))
    return found


def fleet_config(fleet: list[Box], destination: Path, changes: dict | None = None) -> Path:
    """One file for the fleet: each box's own tables (as seen over SSH) under [[boxes]]."""
    data = tomllib.loads(fleet[0].paths.ssh_maintenance_config.read_text())
    entries = []
    for box in fleet:
        own = tomllib.loads(box.paths.ssh_maintenance_config.read_text())
        entries.append({"name": own["host"]["name"], **{key: own[key] for key in BOX_TABLES if key in own}})
    outside = destination.parent / "outside"
    data.update(alerts={"file": str(outside / "alerts.jsonl"), "spool_dir": str(outside / "spool")},
                policy={"state_dir": str(outside / "state")}, reports={"dir": str(outside / "reports")})
    for key, value in (changes or {}).items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    data["boxes"] = entries
    text = configfile.render(_sections(data)).replace(
        "# Written by `python -m lab up` for the lab", "# Written by `python -m lab box fleet up` for a fleet", 1)
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_text(text)
    return destination
