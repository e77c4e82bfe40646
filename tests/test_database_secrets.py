"""Secrets from one place, and a database password the suite lacks is never the database's fault (issue 18).

The variables a `*_env` key names are looked up in [schedule] secrets_file first, then in the environment, by every
entry point (the plugin, `commands run`, the make targets), and never exported. A password that is not there is
CouldNotRead(SECRET_MISSING) naming the variable and where to set it; a login the server refuses is
CouldNotRead(AUTHENTICATION): DB-001 is UNKNOWN, nothing is restarted, the alert is an unknown one. A stopped or
frozen postgres still fails DB-001 (tests/test_database.py).

The unit tests need no database. The lab tests (session lab, `-k test_database_answers`: DB-001 alone) each run one
cadence; the lab's password is the real one, so only the way the suite finds it changes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import psycopg
import pytest
import tomli_w

from configuration import load, secretsfile
from configuration.alerts import read_secret
from configuration.schema import Database as DatabaseSection
from conftest import ROOT, run_cadence
from core.unread import CouldNotRead
from core.vocabulary import ExitStatus, Unread
from probes.database import Database, login_refused
from probes.host import box_of

VARIABLE = "TEST_TRADING_DB_PASSWORD"
CANARY = "canary-5e1d-db-password"
ONLY_DB_001 = ("-k", "test_database_answers")


@pytest.fixture(autouse=True)
def environment_alone(monkeypatch):
    """Each test starts and ends with no secrets file in use and the variable in no environment."""
    monkeypatch.delenv(VARIABLE, raising=False)
    secretsfile.forget()
    yield
    secretsfile.forget()


def secrets_file(directory: Path, text: str, mode: int = 0o600) -> Path:
    path = directory / "secrets.env"
    path.write_text(text)
    path.chmod(mode)
    return path


def minimal_config(tmp_path: Path, **tables) -> Path:
    """A configuration whose outputs are all under tmp_path, remediation off."""
    data = {"reports": {"dir": str(tmp_path / "reports")}, "policy": {"state_dir": str(tmp_path / "state")},
            "alerts": {"file": str(tmp_path / "alerts.jsonl"), "spool_dir": str(tmp_path / "spool")},
            "remediation": {"mode": "off"}, **tables}
    path = tmp_path / "maintenance.toml"
    path.write_text(tomli_w.dumps(data))
    return path


# -- where a variable is looked up


def test_a_variable_comes_from_the_secrets_file_before_the_environment_and_is_never_exported(tmp_path, monkeypatch):
    monkeypatch.setenv(VARIABLE, "from-the-shell")
    secretsfile.use(secrets_file(tmp_path, f"{VARIABLE}={CANARY}\nOTHER='x y'\n"))
    assert secretsfile.variable(VARIABLE).get_secret_value() == CANARY
    assert os.environ[VARIABLE] == "from-the-shell" and "OTHER" not in os.environ  # no child process inherits it
    assert CANARY not in repr(secretsfile.variable(VARIABLE))
    secretsfile.forget()
    assert secretsfile.variable(VARIABLE).get_secret_value() == "from-the-shell"
    assert secretsfile.variable("OTHER") is None


def test_an_unsafe_secrets_file_is_refused_with_its_fix_and_changes_nothing(tmp_path):
    safe = secrets_file(tmp_path, f"{VARIABLE}={CANARY}\n")
    secretsfile.use(safe)
    (tmp_path / "other").mkdir()
    unsafe = secrets_file(tmp_path / "other", f"{VARIABLE}=stolen\n", mode=0o640)
    with pytest.raises(secretsfile.SecretsRefused, match=rf"is mode 640: .*chmod 600 {unsafe}"):
        secretsfile.use(unsafe)
    assert secretsfile.secrets_path() == safe and secretsfile.variable(VARIABLE).get_secret_value() == CANARY


def test_an_alert_channels_secret_is_found_in_the_secrets_file(tmp_path):
    secretsfile.use(secrets_file(tmp_path, f"{VARIABLE}={CANARY}\n"))
    assert read_secret(VARIABLE, None, "header_value") == CANARY


# -- a password that is not there, or refused


def test_a_password_variable_set_nowhere_is_secret_missing_naming_it_and_the_secrets_file(tmp_path):
    secrets = secrets_file(tmp_path, "SOMETHING_ELSE=1\n")
    secretsfile.use(secrets)
    with pytest.raises(CouldNotRead) as missing:
        DatabaseSection(password_env=VARIABLE).password()
    assert missing.value.cause == Unread.SECRET_MISSING
    assert missing.value.fix == f"set {VARIABLE} in the secrets file {secrets} ([schedule] secrets_file)"
    assert f"{VARIABLE} is in neither the secrets file {secrets} nor the environment" in str(missing.value)


def test_without_a_secrets_file_the_fix_says_where_every_run_would_find_it():
    with pytest.raises(CouldNotRead) as missing:
        DatabaseSection(password_env=VARIABLE).password()
    assert missing.value.cause == Unread.SECRET_MISSING and f"{VARIABLE} is not set" in missing.value.detail
    assert f"set {VARIABLE} in a secrets file named by [schedule] secrets_file" in missing.value.fix


def test_a_password_file_gone_or_empty_since_the_load_is_secret_missing_naming_the_key(tmp_path):
    path = tmp_path / "db-password"
    path.write_text(CANARY + "\n")
    section = DatabaseSection(password_file=path)
    assert section.password().get_secret_value() == CANARY
    path.write_text("\n")
    with pytest.raises(CouldNotRead, match=rf"\[database\] password_file {path} is empty"):
        section.password()
    path.unlink()
    with pytest.raises(CouldNotRead, match=rf"\[database\] password_file {path} does not exist") as gone:
        section.password()
    assert gone.value.cause == Unread.SECRET_MISSING


def test_a_missing_password_stops_before_any_login_and_names_the_box(tmp_path):
    """Nothing listens on the port: a login attempted would be a refused connection (a fault), not this."""
    settings = load(minimal_config(tmp_path, database={"port": 9, "password_env": VARIABLE}))
    probe = Database(settings, box_of(settings))
    with pytest.raises(CouldNotRead) as missing:
        probe.answers()  # DB-001's reading: what it cannot read is never "does not answer"
    assert missing.value.cause == Unread.SECRET_MISSING and missing.value.box == settings.host.name
    assert str(missing.value).startswith("could not read database trading_agent at 127.0.0.1:9 as postgres")


@pytest.mark.parametrize(("said", "refused"), [
    ('connection failed: connection to server at "127.0.0.1", port 5432 failed: FATAL:  password authentication '
     'failed for user "postgres"', True),
    ('connection failed: connection to server at "127.0.0.1", port 5432 failed: fe_sendauth: no password supplied',
     True),
    ('connection failed: FATAL:  no pg_hba.conf entry for host "10.0.0.2", user "postgres", database "x", no '
     'encryption', True),
    ('connection failed: FATAL:  pg_hba.conf rejects connection for host "127.0.0.1", user "postgres"', True),
    ('connection failed: FATAL:  role "maint" does not exist', True),
    ('connection failed: connection to server at "127.0.0.1", port 5432 failed: Connection refused', False),
    ("connection timeout expired", False),
    ("connection failed: server closed the connection unexpectedly", False),
    ('connection failed: FATAL:  database "trading_agent" does not exist', False),
    ("connection failed: FATAL:  the database system is starting up", False),
])
def test_only_a_refused_login_is_authentication_a_dead_server_stays_a_fault(said, refused):
    assert login_refused(psycopg.OperationalError(said)) is refused


def test_a_refused_login_is_authentication_said_once_a_run_without_another_attempt(tmp_path, monkeypatch):
    attempts = []

    def refusing(**arguments):
        attempts.append(arguments)
        raise psycopg.OperationalError('connection failed: FATAL:  password authentication failed for user "postgres"')

    monkeypatch.setattr(psycopg, "connect", refusing)
    secretsfile.use(secrets_file(tmp_path, f"{VARIABLE}=wrong\n"))
    settings = load(minimal_config(tmp_path, database={"password_env": VARIABLE}))
    probe = Database(settings, box_of(settings))
    for _ in range(3):
        with pytest.raises(CouldNotRead) as refused:
            probe.answers()
    assert len(attempts) == 1 and attempts[0]["password"] == "wrong"
    assert refused.value.cause == Unread.AUTHENTICATION
    assert f"{VARIABLE} in the secrets file {tmp_path / 'secrets.env'}" in refused.value.fix
    assert "wrong" not in str(refused.value)


def test_a_password_from_the_secrets_file_is_masked_and_a_missing_one_is_no_error(tmp_path):
    settings = load(minimal_config(tmp_path, database={"password_env": VARIABLE}))
    assert CANARY not in settings.secrets()  # nothing to mask, and no CouldNotRead either
    secretsfile.use(secrets_file(tmp_path, f"{VARIABLE}={CANARY}\n"))
    assert CANARY in settings.secrets()


def test_a_run_refuses_a_secrets_file_others_may_read_in_one_line_and_status_4(tmp_path):
    secrets = secrets_file(tmp_path, f"{VARIABLE}={CANARY}\n", mode=0o644)
    config = minimal_config(tmp_path, schedule={"secrets_file": str(secrets)})
    done = subprocess.run([sys.executable, "-m", "pytest", "-m", "daily", f"--maintenance-config={config}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == ExitStatus.BAD_CONFIGURATION, done.stdout + done.stderr
    assert f"secrets file {secrets} is mode 644" in done.stderr and f"chmod 600 {secrets}" in done.stderr
    assert CANARY not in done.stdout + done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "reports").exists()


# -- against the lab: DB-001 as the operator sees it


def lab_database_config(lab_config: Path, tmp_path: Path, **schedule) -> Path:
    """The lab's configuration with its password named by VARIABLE instead of a file, the given [schedule]."""
    data = tomllib.loads(lab_config.read_text())
    data["database"].pop("password_file")
    data["database"]["password_env"] = VARIABLE
    data["schedule"] = {"log_dir": str(tmp_path / "logs"), **schedule}
    data["reports"] = {**data.get("reports", {}), "dir": str(tmp_path / "reports")}
    path = tmp_path / "maintenance.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def without_password(env: dict | None = None) -> dict:
    """The environment of a run as cron or `sudo` gives it: the variable is not there."""
    return {name: value for name, value in {**os.environ, **(env or {})}.items() if name != VARIABLE}


def postgres_pid(lab) -> int:
    return lab.supervisor.info("postgresql")["pid"]


def test_a_password_missing_on_the_monitoring_host_is_unknown_and_restarts_nothing(healthy_lab, lab_config, tmp_path):
    secrets = secrets_file(tmp_path, "WEBHOOK_TOKEN=unrelated\n")
    config = lab_database_config(lab_config, tmp_path, secrets_file=str(secrets))
    before = postgres_pid(healthy_lab)
    run = run_cadence(config, tmp_path / "reports", "--remediation=apply", *ONLY_DB_001)
    db = run.only("DB-001").properties
    assert db["verdict"] == "unknown", run.output
    assert f"set {VARIABLE} in the secrets file {secrets} ([schedule] secrets_file)" in db["problem"]
    assert "remediation_outcome" not in db and "fe_sendauth" not in run.output
    assert postgres_pid(healthy_lab) == before  # supervisord restarted nothing
    kinds = [alert["kind"] for alert in run.alerts if alert.get("check_id") == "DB-001"]
    assert kinds == ["unknown"], run.alerts
    assert run.returncode == ExitStatus.COULD_NOT_CHECK, run.output


def test_a_password_the_server_refuses_is_unknown_authentication(healthy_lab, lab_config, tmp_path):
    secrets = secrets_file(tmp_path, f"{VARIABLE}=not-the-password\n")
    config = lab_database_config(lab_config, tmp_path, secrets_file=str(secrets))
    before = postgres_pid(healthy_lab)
    run = run_cadence(config, tmp_path / "reports", "--remediation=apply", *ONLY_DB_001, env=without_password())
    db = run.only("DB-001").properties
    assert db["verdict"] == "unknown" and Unread.AUTHENTICATION.value in db["problem"], run.output
    assert "password authentication failed" in db["problem"] and "remediation_outcome" not in db
    assert postgres_pid(healthy_lab) == before and "not-the-password" not in run.output


def test_the_scheduled_run_finds_the_password_in_the_secrets_file_alone(healthy_lab, lab_config, tmp_path):
    """As cron starts it: nothing of the operator's environment; PYTEST_ADDOPTS narrows the run to DB-001 (the
    scheduled run passes its environment on to pytest, and the whole daily cadence is not what is shown here)."""
    secrets = secrets_file(tmp_path, f"{VARIABLE}={healthy_lab.db_password()}\n")
    config = lab_database_config(lab_config, tmp_path, secrets_file=str(secrets))
    env = {"PATH": "/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8", "PYTEST_ADDOPTS": " ".join(ONLY_DB_001)}
    done = subprocess.run([sys.executable, "-m", "commands", "run", "daily", "--config", str(config)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    [output] = (tmp_path / "logs").glob("daily-*.log")
    text = output.read_text()
    assert done.returncode == 0, text + done.stderr
    assert "1 passed" in text and healthy_lab.db_password() not in text


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")
def test_make_daily_finds_the_password_in_the_secrets_file_alone(healthy_lab, lab_config, tmp_path):
    secrets = secrets_file(tmp_path, f"{VARIABLE}={healthy_lab.db_password()}\n")
    config = lab_database_config(lab_config, tmp_path, secrets_file=str(secrets))
    done = subprocess.run(["make", "--no-print-directory", "-o", "system-deps", "daily", f"CONFIG={config}",
                           f"PYTEST_ARGS={' '.join(ONLY_DB_001)} --reports-dir={tmp_path / 'reports'}"],
                          cwd=ROOT, env=without_password(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "daily run exit status 0" in done.stdout and healthy_lab.db_password() not in done.stdout
