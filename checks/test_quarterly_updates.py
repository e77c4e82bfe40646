"""Quarterly 1: Software Updates (the guide's `apt full-upgrade`, Node.js' major version), and System
Updates 2 (Node.js).

Every pending update but the held ones ([updates] hold, the kernel: the guide's `--exclude=linux-*`) is
installed by the remediation install_updates (off unless [updates] install = true, only inside
[updates] window, after a backup). Node.js is checked against [updates] node_min_major; its upgrade is
the distribution's (or NodeSource's apt repository's) `nodejs` package through the same path, never
the guide's `curl ... | sudo -E bash -`.
"""

import pytest

from probes.updates import node_major

pytestmark = pytest.mark.quarterly


@pytest.mark.check("UPD-005", severity="warning",
                   why="a quarter's updates left uninstalled pile up into one upgrade nobody can review")
@pytest.mark.remediate("install_updates", scope="all")
def test_updates_installed_but_the_held(updates, settings, record_property):
    held = [p for p in updates.pending if updates.held(p)]
    due = [p for p in updates.pending if not updates.held(p)]
    record_property("updates_pending", len(updates.pending))
    record_property("updates_held", ", ".join(p.name for p in held))
    hold = ", ".join(settings.updates.hold)
    kept = f"; held back ([updates] hold {hold}): {', '.join(map(str, held))}" if held else ""
    assert not due, f"{len(due)} update(s) not installed: {', '.join(map(str, due[:20]))}{kept}"


@pytest.mark.check("UPD-006", severity="warning",
                   why="a Node.js line past its end of life gets no more security fixes")
def test_node_is_supported(updates, settings, record_property):
    version = updates.node_version
    if version is None:
        pytest.skip(f"no {settings.updates.node} on the box ([updates] node): no Node.js application")
    record_property("node_version", version)
    minimum = settings.updates.node_min_major
    assert node_major(version) >= minimum, (
        f"Node.js {version} is older than major {minimum} ([updates] node_min_major): upgrade the nodejs "
        f"package in the maintenance window")
