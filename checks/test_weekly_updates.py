"""Weekly 3: Security Updates (the guide's `apt update`, `apt list --upgradable`, `npm audit`), and
System Updates 1's reboot flag.

Security updates are told apart by apt's own release data (probes/updates.py), not by the guide's
`grep -i security` over `apt list --upgradable`. Installing them is the remediation install_updates,
off unless [updates] install = true and then only inside [updates] window, after a backup; the kernel
([updates] hold) is never installed by it.
"""

import pytest

from core.listing import listed

pytestmark = pytest.mark.weekly



@pytest.mark.check("UPD-001", severity="critical",
                   why="a published security fix not installed is a known way in to a box that holds exchange keys")
@pytest.mark.remediate("install_updates", scope="security")
def test_no_security_update_pending(updates, record_property):
    security = updates.security
    record_property("security_updates_pending", len(security))
    assert not security, f"{len(security)} security update(s) pending: {listed(security)}"


@pytest.mark.check("UPD-002", severity="warning",
                   why="a box many updates behind gets them all at once, in one risky upgrade")
def test_pending_updates_within_limit(updates, settings, record_property):
    pending, limit = updates.pending, settings.updates.max_pending
    record_property("updates_pending", len(pending))
    record_property("security_updates_pending", len(updates.security))
    assert len(pending) <= limit, (
        f"{len(pending)} update(s) pending, [updates] max_pending {limit} (over by {len(pending) - limit}), "
        f"{len(updates.security)} of them security: {listed(pending)}")


@pytest.mark.check("UPD-003", severity="warning",
                   why="an installed kernel or libc fix does nothing until the box restarts")
def test_no_reboot_required(updates, settings):
    reboot = updates.reboot
    packages = listed(reboot["packages"]) or f"none listed in {settings.updates.reboot_packages_file()}"
    assert not reboot["required"], (
        f"a reboot is required ({settings.updates.reboot_required_file}), for: {packages}; "
        f"schedule it in the maintenance window (make update-os)")


@pytest.mark.check("UPD-004", severity="warning",
                   why="a vulnerable dependency of the agent is reachable by whatever talks to it")
def test_npm_audit_clean(updates, settings, record_property):
    reason = updates.npm_not_applicable
    if reason:
        pytest.skip(reason)
    audit = updates.npm_audit
    levels = settings.updates.at_or_above()
    counted = {level: audit["counts"].get(level, 0) for level in levels}
    record_property("npm_vulnerabilities", ", ".join(f"{k}={v}" for k, v in audit["counts"].items()))
    total = sum(counted.values())
    names = [f"{name} ({level})" for level in reversed(levels) for name in audit["packages"].get(level, [])]
    by_level = ", ".join(f"{level} {n}" for level, n in counted.items() if n)
    assert total == 0, (
        f"npm audit in {settings.updates.app_dir}: {total} vulnerabilit(ies) at {settings.updates.npm_audit_level} "
        f"or above ({by_level}): {listed(names) or 'see npm audit'}")
