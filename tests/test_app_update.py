"""Application updates that roll back (Update Procedures 1-2): `python -m commands update` against a real git
repository and the lab's supervisor (port base 22000, TEST_LAB_APPUPD_PORT_BASE).

The application is a real git checkout in the lab's /opt/trading-agent stand-in, of a real bare "origin" with
commits v1, v2 (good) and v3 (its build breaks the agent's health); git is real. `npm` is a stand-in (there is no
registry here): a script the test writes, whose `test` fails or hangs on a switch file, and whose `run build`
stands in for deploying the built application: a checkout holding `breaks-health` switches on the lab's
`health-low` fault (the agent then reports 65 % health, ERR-003 fails), any other removes it. The verification
runs two daily checks (`-k`): the services and the agent's health.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from trail_helpers import acts

from commands.updatesteps import Progress
from configuration import ConfigError, Settings, load
from conftest import ROOT, config_with
from core.vocabulary import LedgerKind
from lab import Lab

PORT_BASE = int(os.environ.get("TEST_LAB_APPUPD_PORT_BASE", "22000"))
VERIFY = ["-k", "test_service_is_running or test_system_health_above_minimum"]
FAKE_NPM = """#!/bin/sh
# A stand-in for npm (no registry here): `test` fails or hangs on a switch file, `run build` deploys.
switches={switches}
case "$1" in
  ci|install) mkdir -p node_modules && echo "added 1 package" ;;
  test) echo "> trading-agent@1.0.0 test"
        if [ -e "$switches/hang-test" ]; then echo "hanging"; sleep 120; fi
        if [ -e "$switches/fail-test" ]; then echo "FAIL src/orders.test.js"; echo "Tests: 1 failed, 9 passed"; exit 1; fi
        echo "Tests: 10 passed" ;;
  run) if [ -e "$switches/fail-build" ]; then echo "error TS2304: Cannot find name 'Order'"; exit 1; fi
       if [ -e breaks-health ]; then : > {fault}; else rm -f {fault}; fi
       echo "built $(cat VERSION)" ;;
  *) echo "fake npm: $*" >&2; exit 2 ;;
esac
"""


def git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=30).stdout.strip()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    instance = Lab(tmp_path_factory.mktemp("appupdlab"), PORT_BASE)
    instance.up()
    yield instance
    instance.down(purge=True)


@pytest.fixture(scope="module")
def app(lab, tmp_path_factory):
    """origin (bare) with tags v1, v2, v3; the lab's application directory a checkout of v1; the fake npm."""
    root = tmp_path_factory.mktemp("app")
    origin, work, switches = root / "origin.git", root / "work", root / "switches"
    switches.mkdir()
    git("init", "--bare", "-b", "main", str(origin), cwd=root)
    git("init", "-b", "main", str(work), cwd=root)
    for key, value in (("user.email", "dev@example.org"), ("user.name", "dev")):
        git("config", key, value, cwd=work)
    (work / ".gitignore").write_text(".env\nconfig/\nkeys/\nlogs/\nbackups/\nnode_modules/\n")
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
    npm = root / "npm"
    npm.write_text(FAKE_NPM.format(switches=switches, fault=lab.switches.path("health-low")))
    npm.chmod(0o755)
    checkout = lab.paths.opt_dir
    git("init", "-b", "main", cwd=checkout)
    git("remote", "add", "origin", str(origin), cwd=checkout)
    git("fetch", "--tags", "origin", cwd=checkout)
    git("checkout", "-f", "-B", "main", "v1", cwd=checkout)
    config = config_with(lab.config_path, root / "maintenance.toml", {"application": {
        "install": [str(npm), "ci"], "test": [str(npm), "test"], "build": [str(npm), "run", "build"],
        "verify_args": [*VERIFY, f"--reports-dir={root / 'reports'}"], "test_timeout_seconds": 60}})
    return type("App", (), {"origin": origin, "work": work, "switches": switches, "checkout": checkout,
                            "config": config, "tags": {t: git("rev-parse", f"{t}^{{commit}}", cwd=work)
                                                       for t in ("v1", "v2", "v3")}})


@pytest.fixture
def at_v1(lab, app):
    """The checkout on main at v1, origin's main at v1, no fault, no switch, no unfinished update."""
    lab.clear()
    for switch in app.switches.iterdir():
        switch.unlink()
    push_main(app, "v1")
    git("checkout", "-f", "-B", "main", "v1", cwd=app.checkout)
    state = lab.paths.root / "maintenance" / "state"
    for progress in state.glob("update-*.json"):
        progress.unlink()
    yield app
    lab.clear()


def push_main(app, tag: str) -> None:
    """origin's main at that tag's commit."""
    git("push", "-f", "origin", f"{app.tags[tag]}:refs/heads/main", cwd=app.work)


def update(app, *args, config=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "commands", "update", *args, "--config", str(config or app.config)],
                          cwd=ROOT,
                          capture_output=True, text=True, timeout=300, **kwargs)


def head(app) -> str:
    return git("rev-parse", "HEAD", cwd=app.checkout)


def audit_lines(lab) -> list[dict]:
    """The update steps in the ledger of the lab's [reports] dir."""
    return acts(lab.paths.root / "reports", LedgerKind.APP_UPDATE)


def programs_running(lab) -> list[str]:
    out = subprocess.run([*load(lab.config_path).host.supervisorctl, "status"], capture_output=True, text=True,
                         timeout=30).stdout
    return sorted(line.split()[0] for line in out.splitlines() if "RUNNING" in line)


# -- without the lab


def test_application_section_is_validated(tmp_path):
    for text, key in (('[application]\ndir = "opt/trading-agent"\n', "dir"),
                      ('[application]\nbranch = "--upload-pack=x"\n', "branch"),
                      ('[application]\nremote = "a/../b"\n', "remote")):
        path = tmp_path / "m.toml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=key):
            load(path)


def test_progress_survives_a_round_trip(tmp_path):
    progress = Progress("major", "v2.0.0", "a" * 40, None, 1.0, 42, step="build", backup="full-20261126-030000",
                        checked_out=True, migrated_database=True)
    progress.save(tmp_path / "update-box.json")
    assert Progress.load(tmp_path / "update-box.json") == progress
    assert Progress.load(tmp_path / "absent.json") is None


def test_each_step_is_a_line_of_the_ledger_none_in_a_plan_and_one_not_written_is_said(tmp_path, capsys):
    from commands.updatesteps import Steps
    from core.vocabulary import ActionStatus

    settings = Settings.model_validate({"reports": {"dir": str(tmp_path / "reports")},
                                        "policy": {"state_dir": str(tmp_path / "state")}})
    Steps(settings, None, "update-minor", plan=True).record("build", ActionStatus.DONE, "")
    assert not (tmp_path / "reports").exists(), "a plan records nothing"
    Steps(settings, None, "update-minor", plan=False).record("build", ActionStatus.FAILED, "npm exit 1", output="x")
    [line] = acts(tmp_path / "reports", LedgerKind.APP_UPDATE)
    assert line | {"at": 0, "who": ""} == {"at": 0, "who": "", "event": "update-minor", "box": "trading-box",
                                           "step": "build", "status": "failed", "detail": "npm exit 1", "output": "x"}
    assert not (tmp_path / "state").exists(), "one operator trail: the ledger"
    with (tmp_path / "reports" / "ledger.jsonl").open("a") as ledger_file:
        ledger_file.write("written over by hand\n")
    Steps(settings, None, "update-minor", plan=False).record("test", ActionStatus.DONE, "")  # said, not raised
    assert f"not recorded in the ledger of {tmp_path / 'reports'}: " in capsys.readouterr().err


def test_a_ref_that_looks_like_an_option_is_refused(tmp_path):
    done = subprocess.run([sys.executable, "-m", "commands", "update", "major", "--ref", "--upload-pack=touch x",
                           "--config", str(tmp_path / "none.toml")], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "is not a tag or commit" in done.stderr, done.stderr


# -- on the lab

@pytest.mark.lab
def test_plan_says_every_step_and_changes_nothing(lab, at_v1):
    push_main(at_v1, "v2")
    done = update(at_v1, "minor")
    assert done.returncode == 0, done.stdout + done.stderr
    for words in ("would keep .env and config/", "would fetch origin", "would check out main and fast-forward",
                  "merge --ff-only origin/main", "would test:", "would restart trading-agent, trading-dashboard",
                  "would verify: the daily checks pass", "--remediation=off"):
        assert words in done.stdout, f"{words!r} not in the plan:\n{done.stdout}"
    assert head(at_v1) == at_v1.tags["v1"]
    assert not list((lab.paths.root / "maintenance" / "state").glob("update-*.json"))


@pytest.mark.lab
def test_a_good_minor_update_fast_forwards_and_passes_its_checks(lab, at_v1):
    push_main(at_v1, "v2")
    done = update(at_v1, "minor", "--apply")
    assert done.returncode == 0, done.stdout + done.stderr
    assert head(at_v1) == at_v1.tags["v2"]
    assert "updated from" in done.stdout and "the daily checks pass" in done.stdout, done.stdout
    backups = sorted(lab.paths.backup_dir.glob("config-before-update-*.tar.gz"))
    assert backups and oct(backups[-1].stat().st_mode & 0o777) == "0o600"
    steps = [line["step"] for line in audit_lines(lab) if line["event"] == "update-minor"]
    assert "verify: the daily checks pass" in steps and "update" in steps, steps
    assert {"trading-agent", "trading-dashboard"} <= set(programs_running(lab))


@pytest.mark.lab
def test_failing_tests_roll_back_to_the_old_commit_with_services_running(lab, at_v1):
    push_main(at_v1, "v2")
    (at_v1.switches / "fail-test").touch()
    env_before = lab.paths.env_file.read_text()
    lab.paths.env_file.write_text(env_before)  # the backup holds this one
    done = update(at_v1, "minor", "--apply")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "test:" in done.stderr and "FAILED" in done.stderr and "Tests: 1 failed, 9 passed" in done.stderr
    assert "ROLLED BACK" in done.stderr, done.stderr
    assert head(at_v1) == at_v1.tags["v1"]
    assert git("symbolic-ref", "--short", "HEAD", cwd=at_v1.checkout) == "main"
    assert lab.paths.env_file.read_text() == env_before
    assert {"trading-agent", "trading-dashboard"} <= set(programs_running(lab))
    assert not list((lab.paths.root / "maintenance" / "state").glob("update-*.json"))


@pytest.mark.lab
def test_daily_checks_failing_after_the_update_roll_it_back_and_the_box_is_healthy_again(lab, at_v1):
    push_main(at_v1, "v3")
    done = update(at_v1, "minor", "--apply")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "verify: the daily checks pass: FAILED" in done.stderr and "ERR-003" in done.stderr, done.stderr
    assert head(at_v1) == at_v1.tags["v1"]
    assert not lab.switches.on("health-low"), "the rollback rebuilt v1, which does not break the health"
    assert "verify: the daily checks pass again: done" in done.stdout, done.stdout
    alerts = [json.loads(line) for line in lab.paths.alerts_file.read_text().splitlines()]
    assert any(a.get("check_id") == "UPDATE" and "rolled back" in a.get("title", "") for a in alerts), alerts[-3:]


@pytest.mark.lab
def test_an_update_killed_mid_way_is_rolled_back_by_the_next_run(lab, at_v1):
    push_main(at_v1, "v2")
    (at_v1.switches / "hang-test").touch()
    progress_file = lab.paths.root / "maintenance" / "state" / f"update-{load(at_v1.config).host.name}.json"
    child = subprocess.Popen([sys.executable, "-m", "commands", "update", "minor", "--apply", "--config",
                              str(at_v1.config)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (progress_file.exists() and Progress.load(progress_file).step.startswith("test")):
            assert child.poll() is None and time.monotonic() < deadline, child.stdout.read() if child.poll() else "no test"
            time.sleep(0.2)
        time.sleep(0.5)  # npm test is hanging
    finally:  # the update and its hanging npm never outlive the test
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert head(at_v1) == at_v1.tags["v2"], "killed after the checkout"
    (at_v1.switches / "hang-test").unlink()
    done = update(at_v1, "rollback", "--apply")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "an unfinished minor update to main" in done.stderr and "is rolled back first" in done.stderr
    assert head(at_v1) == at_v1.tags["v1"]
    assert not progress_file.exists()
    assert {"trading-agent", "trading-dashboard"} <= set(programs_running(lab))


MIGRATE = """import sys
import psycopg
what, port, password_file = sys.argv[1], sys.argv[2], sys.argv[3]
if what == "config-fails":
    print("migrate-config: config/trading-config.json: unknown key maxLeverage")
    sys.exit(1)
with psycopg.connect(host="127.0.0.1", port=int(port), user="postgres", dbname="trading_agent",
                     password=open(password_file).read().strip(), autocommit=True) as conn:
    conn.execute("CREATE TABLE IF NOT EXISTS migrated_v2 (id int)")
print("migrated the database to v2")
"""


def tables(lab, dbname="trading_agent") -> set[str]:
    with lab.cluster().connect(dbname) as conn:
        return {row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def major_config(lab, app, tmp_path, config_step: str):
    script = tmp_path / "migrate.py"
    script.write_text(MIGRATE)
    args = [str(PORT_BASE + 432), str(lab.paths.db_password_file)]
    return config_with(app.config, tmp_path / "major.toml", {"application": {
        "migrate_database": [[sys.executable, str(script), "database", *args]],
        "migrate_config": [[sys.executable, str(script), config_step, *args]]}})


@pytest.mark.lab
def test_a_major_update_stops_backs_up_migrates_and_starts_in_order(lab, at_v1, tmp_path):
    config = major_config(lab, at_v1, tmp_path, "config")
    done = update(at_v1, "major", "--ref", "v2", "--apply", config=config)
    assert done.returncode == 0, done.stdout + done.stderr
    assert head(at_v1) == at_v1.tags["v2"]
    for words in ("stop trading-agent, trading-dashboard, ssh-tunnel: done", "take a full backup", "took full-",
                  "migrate the database: done", "start ssh-tunnel, trading-agent, trading-dashboard in that order"):
        assert words in done.stdout, f"{words!r} not in:\n{done.stdout}"
    assert "migrated_v2" in tables(lab)
    with lab.cluster().connect("trading_agent") as conn:
        conn.execute("DROP TABLE migrated_v2")


@pytest.mark.lab
def test_a_failed_major_update_after_a_database_migration_gets_the_database_of_before(lab, at_v1, tmp_path):
    config = major_config(lab, at_v1, tmp_path, "config-fails")
    done = update(at_v1, "major", "--ref", "v2", "--apply", config=config)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "migrate the configuration: FAILED" in done.stderr and "unknown key maxLeverage" in done.stderr
    assert "restore the database from full-" in done.stdout and "trading_agent_before_" in done.stdout, done.stdout
    assert head(at_v1) == at_v1.tags["v1"]
    assert git("symbolic-ref", "--short", "HEAD", cwd=at_v1.checkout) == "main"
    assert "migrated_v2" not in tables(lab), "the database is the backup's, from before the migration"
    with lab.cluster().connect("postgres") as conn:
        kept = [row[0] for row in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'trading_agent_before_%'")]
    assert kept and "migrated_v2" in tables(lab, kept[0]), "the migrated database is kept, renamed"
    assert {"ssh-tunnel", "trading-agent", "trading-dashboard"} <= set(programs_running(lab))
    with lab.cluster().connect("postgres") as conn:
        for name in kept:
            conn.execute(f'DROP DATABASE "{name}"')


@pytest.mark.lab
def test_a_rollback_that_fails_is_said_loudly_and_retried_by_make_update_rollback(lab, at_v1):
    push_main(at_v1, "v2")
    (at_v1.switches / "fail-build").touch()  # v2's build fails, and so does the rollback's rebuild of v1
    done = update(at_v1, "minor", "--apply")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "ROLLBACK FAILED" in done.stderr and "build" in done.stderr and "make update-rollback" in done.stderr
    alerts = [json.loads(line) for line in lab.paths.alerts_file.read_text().splitlines()]
    assert any(a.get("check_id") == "UPDATE" and a.get("severity") == "critical" and "rollback FAILED" in a["title"]
               for a in alerts), alerts[-3:]
    progress = lab.paths.root / "maintenance" / "state" / f"update-{load(at_v1.config).host.name}.json"
    assert progress.exists(), "kept, so that the next run tries the rollback again"
    refused = update(at_v1, "minor", "--apply")
    assert refused.returncode == 3 and "is rolled back first" in refused.stderr, "no update on top of a failed rollback"
    (at_v1.switches / "fail-build").unlink()
    again = update(at_v1, "rollback", "--apply")
    assert again.returncode == 0, again.stdout + again.stderr
    assert head(at_v1) == at_v1.tags["v1"] and not progress.exists()
