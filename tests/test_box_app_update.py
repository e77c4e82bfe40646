"""Application updates on a box (Update Procedures 1-2): `python -m commands update minor|major|rollback --apply` run as an
operator runs it, as root inside a box (a real systemd as PID 1, the guide's paths; box port base 21500,
TEST_BOX_APPUPD_PORT_BASE) with its own configuration: systemd stops, starts and restarts the services.

The application is a real git checkout at the box's /opt/trading-agent, owned by the guide's service user `trading`,
of a real bare "origin" (the box's /var/tmp/appupd/origin.git, standing in for the remote: there is no network)
with commits v1, v2 (good) and v3 (its build breaks the agent's health). The update runs git and npm as `trading`
(`[application] run_as = runuser -u trading --`), and nothing it leaves in the checkout may be root's. `npm` is a
stand-in (there is no registry here): a script whose `run build` stands in for deploying the built application: a
checkout holding `breaks-health` leaves the agent reporting 65 % health (the box's `health-low` switch is a link to
a file this deploy writes as `trading`), any other removes it. The verification runs two daily checks (`-k`) on
the box: the services (SVC-001, from systemd) and the agent's health (ERR-003).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from commands.updatesteps import Progress
from conftest import ROOT, config_with
from lab.box import Box
from lab.box.access import service_ids
from lab.box.layout import SERVICE_USER, Guide

PORT_BASE = int(os.environ.get("TEST_BOX_APPUPD_PORT_BASE", "21500"))
WHY_NOT = Box.unavailable()
VERIFY = ["-k", "test_service_is_running or test_system_health_above_minimum"]
AREA = Path("/var/tmp/appupd")  # inside the box: the origin, the stand-in npm, what the stand-in deploy writes
DEPLOYED_LOW = AREA / "deployed-health-low"
RESTARTED = ("trading-agent", "trading-dashboard")
AS_TRADING = ["runuser", "-u", SERVICE_USER, "--"]
FAKE_NPM = f"""#!/bin/sh
# A stand-in for npm (no registry here): `test` fails or hangs on a switch file, `run build` deploys, and a build
# of a checkout holding breaks-health leaves the agent reporting low health.
case "$1" in
  ci|install) mkdir -p node_modules && echo "added 1 package as $(id -un)" ;;
  test) if [ -e {AREA}/hang-test ]; then echo "hanging"; sleep 120; fi
        if [ -e {AREA}/fail-test ]; then echo "FAIL src/orders.test.js"; echo "Tests: 1 failed, 9 passed"; exit 1; fi
        echo "Tests: 10 passed" ;;
  run) if [ -e breaks-health ]; then : > {DEPLOYED_LOW}; else rm -f {DEPLOYED_LOW}; fi
       echo "built $(cat VERSION) as $(id -un)" ;;
  *) echo "fake npm: $*" >&2; exit 2 ;;
esac
"""

pytestmark = [pytest.mark.lab, pytest.mark.skipif(WHY_NOT is not None, reason=f"no box here: {WHY_NOT}")]


def git(*args, cwd, safe: Path | None = None):
    """git as root on the machine; `safe`: a global configuration that trusts the origin, which is the service
    user's (git's receive-pack does not take `-c safe.directory` from the pushing git)."""
    env = {**os.environ, "GIT_CONFIG_GLOBAL": str(safe)} if safe else None
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def chown_tree(path: Path, uid: int, gid: int, skip: tuple[Path, ...] = ()) -> None:
    os.chown(path, uid, gid)
    for directory, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if Path(directory, d) not in skip]
        for name in [*dirs, *files]:
            os.lchown(Path(directory, name), uid, gid)


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    instance = Box(tmp_path_factory.mktemp("appupdbox"), PORT_BASE)
    instance.up()
    yield instance
    instance.down()


@pytest.fixture(scope="module")
def app(box, tmp_path_factory):
    """origin (bare, the service user's) with tags v1, v2, v3; the box's /opt/trading-agent a checkout of v1 made
    by `trading` inside the box; the stand-in npm; the box's configuration with an [application] section."""
    uid, gid = service_ids()
    work = tmp_path_factory.mktemp("appwork")
    area = box.paths.var_tmp / AREA.name  # the box's /var/tmp is BOX_DIR/var/tmp
    area.mkdir()
    origin = area / "origin.git"
    git("init", "--bare", "-b", "main", str(origin), cwd=work)
    git("init", "-b", "main", str(work), cwd=work)
    for key, value in (("user.email", "dev@example.org"), ("user.name", "dev")):
        git("config", key, value, cwd=work)
    (work / ".gitignore").write_text(".env\nconfig/\nkeys/\nlogs/\nbackups/\nnode_modules/\nscripts/lab/\n")
    (work / "package.json").write_text('{"name": "trading-agent", "scripts": {"test": "jest", "build": "tsc"}}\n')
    for version, breaks in (("v1", False), ("v2", False), ("v3", True)):
        (work / "VERSION").write_text(version + "\n")
        if breaks:
            (work / "breaks-health").write_text("this build reports low health\n")
        git("add", "-A", cwd=work)
        git("commit", "-m", version, cwd=work)
        git("tag", version, cwd=work)
    git("remote", "add", "origin", str(origin), cwd=work)
    git("push", "origin", "--tags", git("rev-parse", "v1^{commit}", cwd=work) + ":refs/heads/main", cwd=work)
    npm = area / "npm"
    npm.write_text(FAKE_NPM)
    npm.chmod(0o755)
    chown_tree(area, uid, gid)
    trust = work.parent / f"{work.name}.gitconfig"
    trust.write_text(f"[safe]\n\tdirectory = {origin}\n")
    # The guide's box: /opt/trading-agent is the service user's (its backups stay the suite's).
    chown_tree(box.paths.opt_dir, uid, gid, skip=(box.paths.backup_dir,))
    checkout = str(Guide.opt_dir)
    for args in (("init", "-q", "-b", "main"), ("remote", "add", "origin", str(AREA / "origin.git")),
                 ("fetch", "-q", "--tags", "origin"), ("checkout", "-q", "-f", "-B", "main", "v1")):
        done = box.run([*AS_TRADING, "git", "-C", checkout, *args])
        assert done.returncode == 0, f"git {' '.join(args)} as {SERVICE_USER} in the box: {done.stderr}"
    config = config_with(box.config_path, box.paths.root / "update.toml", {"application": {
        "run_as": AS_TRADING, "install": [str(AREA / "npm"), "ci"], "test": [str(AREA / "npm"), "test"],
        "build": [str(AREA / "npm"), "run", "build"], "test_timeout_seconds": 60,
        "verify_args": [*VERIFY, f"--reports-dir={box.inside_path(box.paths.reports_dir)}/update"]}})
    return type("App", (), {"work": work, "trust": trust, "area": area, "uid": uid, "config": box.inside_path(config),
                            "tags": {t: git("rev-parse", f"{t}^{{commit}}", cwd=work) for t in ("v1", "v2", "v3")}})


@pytest.fixture
def at_v1(box, app):
    """The checkout on main at v1, origin's main at v1, the v1 build deployed, every service up."""
    push_main(app, "v1")
    done = box.run([*AS_TRADING, "git", "-C", str(Guide.opt_dir), "checkout", "-q", "-f", "-B", "main", "v1"])
    assert done.returncode == 0, done.stderr
    (app.area / DEPLOYED_LOW.name).unlink(missing_ok=True)
    switch = box.switches.path("health-low")  # the agent's switch is the file the stand-in deploy writes
    switch.unlink(missing_ok=True)
    switch.symlink_to(Path("..") / box.paths.var_tmp.relative_to(box.paths.root) / AREA.name / DEPLOYED_LOW.name)
    box.ensure_running(RESTARTED)
    yield app
    switch.unlink(missing_ok=True)


def push_main(app, tag: str) -> None:
    git("push", "-f", "origin", f"{app.tags[tag]}:refs/heads/main", cwd=app.work, safe=app.trust)


def update(box, app, *args) -> subprocess.CompletedProcess:
    """As the operator runs it on the box: root, from the suite's directory, the box's configuration."""
    return box.run(["sh", "-c", f'cd {ROOT} && exec "$@"', "sh", sys.executable, "-m", "commands", "update", *args,
                    "--config", str(app.config)], timeout=300)


def head(box) -> tuple[str, str]:
    """The checkout's commit and branch, read by its owner."""
    argv = [*AS_TRADING, "git", "-C", str(Guide.opt_dir)]
    return (box.run([*argv, "rev-parse", "HEAD"]).stdout.strip(),
            box.run([*argv, "symbolic-ref", "-q", "--short", "HEAD"]).stdout.strip())


def main_pids(box) -> dict[str, str]:
    return {unit: state["MainPID"] for unit, state in box.unit_states(RESTARTED).items()}


def all_active(box) -> dict[str, str]:
    states = box.unit_states(["postgresql", "trading-agent", "trading-dashboard", "ssh-tunnel"])
    return {unit: state["ActiveState"] for unit, state in states.items() if state["ActiveState"] != "active"}


def not_the_service_users(box) -> list[str]:
    """Files of the checkout (its backups aside) that the update left owned by someone else."""
    found = box.run(["find", str(Guide.opt_dir), "-path", str(Guide.backup_dir), "-prune", "-o",
                     "!", "-user", SERVICE_USER, "-print"])
    return found.stdout.split()


def overall_health(box) -> int:
    return requests.get(f"http://127.0.0.1:{box.ports.api}/api/health", timeout=5).json()["overallHealth"]


def test_a_good_minor_update_on_a_box_fast_forwards_restarts_under_systemd_and_verifies(box, at_v1):
    push_main(at_v1, "v2")
    before = main_pids(box)
    done = update(box, at_v1, "minor", "--apply")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert head(box) == (at_v1.tags["v2"], "main")
    for words in ("check out main and fast-forward it to origin/main: done", "added 1 package as trading",
                  "built v2 as trading", "restart trading-agent, trading-dashboard and check them running: done",
                  "verify: the daily checks pass: done", "updated from"):
        assert words in done.stdout, f"{words!r} not in:\n{out}"
    after = main_pids(box)
    assert all(after[unit] != before[unit] and after[unit] != "0" for unit in RESTARTED), (before, after)
    assert not all_active(box), all_active(box)
    assert not not_the_service_users(box), "root left files in the service user's checkout"
    kept = sorted(box.paths.backup_dir.glob("config-before-update-*.tar.gz"))
    assert kept and oct(kept[-1].stat().st_mode & 0o777) == "0o600"


def test_an_update_whose_daily_checks_fail_on_the_box_is_rolled_back_and_the_box_is_healthy(box, at_v1):
    push_main(at_v1, "v3")
    done = update(box, at_v1, "minor", "--apply")
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "built v3 as trading" in done.stdout, out
    assert "verify: the daily checks pass: FAILED" in done.stderr and "ERR-003" in done.stderr, out
    assert "ROLLED BACK" in done.stderr, out
    assert head(box) == (at_v1.tags["v1"], "main")
    assert "built v1 as trading" in done.stdout and "verify: the daily checks pass again: done" in done.stdout, out
    assert not all_active(box), all_active(box)
    assert overall_health(box) >= 80, "v1 rebuilt: the agent is healthy again"
    assert not not_the_service_users(box), "the rollback left root's files in the service user's checkout"
    assert not list((box.paths.root / "maintenance" / "state").glob("update-*.json")), "the rollback finished"




def test_an_update_whose_tests_fail_on_the_box_is_rolled_back_with_the_services_running(box, at_v1):
    push_main(at_v1, "v2")
    switch = at_v1.area / "fail-test"
    switch.touch()
    try:
        done = update(box, at_v1, "minor", "--apply")
    finally:
        switch.unlink()
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Tests: 1 failed, 9 passed" in done.stderr and "ROLLED BACK" in done.stderr, out
    assert head(box) == (at_v1.tags["v1"], "main")
    assert not all_active(box), all_active(box)
    assert not not_the_service_users(box), "the rollback left root's files in the service user's checkout"
    assert not list((box.paths.root / "maintenance" / "state").glob("update-*.json")), "the rollback finished"


def test_an_update_killed_on_the_box_is_rolled_back_by_the_next_run(box, at_v1):
    push_main(at_v1, "v2")
    switch = at_v1.area / "hang-test"
    switch.touch()
    state = box.paths.root / "maintenance" / "state"
    argv = box.command(["sh", "-c", f'cd {ROOT} && exec "$@"', "sh", sys.executable, "-m", "commands", "update",
                        "minor", "--apply", "--config", str(at_v1.config)])
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)  # nsenter, and inside the box the update and its npm: one group
    try:
        deadline = time.monotonic() + 90
        while not any(Progress.load(path).step.startswith("test") for path in state.glob("update-*.json")):
            assert child.poll() is None and time.monotonic() < deadline, "the update never reached its tests"
            time.sleep(0.2)
        time.sleep(0.5)  # npm test is hanging
    finally:  # the update and its hanging npm never outlive the test
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        switch.unlink()
    assert head(box) == (at_v1.tags["v2"], "main"), "killed after the checkout"
    done = update(box, at_v1, "rollback", "--apply")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "an unfinished minor update to main" in done.stderr and "is rolled back first" in done.stderr, out
    assert head(box) == (at_v1.tags["v1"], "main")
    assert not all_active(box), all_active(box)
    assert not not_the_service_users(box), "the rollback left root's files in the service user's checkout"
    assert not list(state.glob("update-*.json")), "the rollback finished"


def started_at(box, units: tuple[str, ...]) -> dict[str, int]:
    """When systemd last saw each unit become active (its monotonic clock, microseconds)."""
    shown = box.systemctl("show", "--property=Id,ActiveEnterTimestampMonotonic", *(f"{u}.service" for u in units))
    values = dict.fromkeys(units, 0)
    for block in shown.stdout.strip().split("\n\n"):
        fields = dict(line.partition("=")[::2] for line in block.splitlines())
        values[fields["Id"].removesuffix(".service")] = int(fields["ActiveEnterTimestampMonotonic"])
    return values


def test_a_major_update_on_a_box_stops_backs_up_and_starts_in_order_under_systemd(box, at_v1):
    order = ("ssh-tunnel", "trading-agent", "trading-dashboard")
    before = started_at(box, order)
    done = update(box, at_v1, "major", "--ref", "v2", "--apply")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert head(box) == (at_v1.tags["v2"], ""), "v2 checked out detached"
    for words in ("stop trading-agent, trading-dashboard, ssh-tunnel: done: stopped trading-agent, trading-dashboard, "
                  "ssh-tunnel", "took full-", "built v2 as trading", "verify: the daily checks pass: done"):
        assert words in done.stdout, f"{words!r} not in:\n{out}"
    after = started_at(box, order)
    assert all(after[unit] > before[unit] for unit in order), (before, after)
    assert after["ssh-tunnel"] < after["trading-agent"] < after["trading-dashboard"], f"systemd started them {after}"
    full = re.search(r"took (full-[0-9-]+)", done.stdout).group(1)
    assert all((box.paths.backup_dir / f"{full}.{part}").stat().st_size > 0 for part in ("tar.gz", "dump")), full
    assert not all_active(box), all_active(box)
    assert not not_the_service_users(box), "root left files in the service user's checkout"
