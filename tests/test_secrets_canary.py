"""Canary secrets: every secret the suite holds is planted as a unique random string, proven to be
used for real, then searched for in everything the runs leave behind.

Planted (test_canaries_are_used_but_never_written_anywhere):
    Telegram bot token     env var        legitimately in the Bot API request path (/bot<token>/...)
    SMTP password          file           legitimately in SMTP AUTH (the server checks it)
    webhook header value   env var        legitimately in the Authorization header
    webhook URL path       [alerts.webhook] legitimately the path the webhook is called at (Slack's and
                           Discord's hooks carry their token there)
    heartbeat URL          [heartbeat]    legitimately the path the heartbeat server is called at
    the lab's DB password  secrets/db-password (database.password_file): never needed by a daily
                           check, so a diagnostic tool is configured that prints its DSN with the
                           password, as such tools do; its output lands in the reports
    the usual shapes       the same tool  prints what the configuration does not know: an exchange
                           request's `signature=`, an `Authorization: Bearer` header, `api_key=`, a
                           JSON `"password"`, a private key block (core/redact.py masks them by shape)

The daily cadence runs twice against the lab with pytest options chosen to leak as much as
possible (DEBUG live logs, -rA, -vv, --tb=long, --showlocals, JUnit with every log): first with
faults that make alerts, remediation output and failing assertions while Telegram answers 502
with an error text that echoes the token (retries, error reasons, the spool), then with Telegram
healthy (the spool is flushed) and the agent's API answering 500 (tracebacks of checks that could
not look). Searched, for every canary in its raw, URL-encoded, JSON, HTML and base64 forms:
both runs' stdout+stderr, every file in the reports directory, the alerts file, every file under
the spool and state directories (after each run), and everything the fake servers received
except the one place each secret is needed. A leak fails the test naming the artifact.

test_a_failing_check_that_prints_the_db_password_leaves_no_trace_of_it is the fast one: a tiny
run of two checks of its own (no lab) whose assertion message and exception carry the password.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import secrets
import subprocess
import sys
import textwrap
import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from conftest import ROOT, CadenceRun, config_with, run_cadence
from tests.alert_servers import ScriptedHTTPServer, SMTPServer, ok, status

pytestmark = pytest.mark.lab

USER = "alerts@example.com"
TOKEN_ENV, HOOK_ENV = "CANARY_TELEGRAM_BOT_TOKEN", "CANARY_WEBHOOK_TOKEN"
# The options that put the most of a run on paper: every log record at DEBUG live on the terminal
# and in the JUnit file, every test's sections (-rA), full tracebacks with their local variables.
LEAKY_OPTIONS = ("-o", "log_level=DEBUG", "-o", "log_cli=true", "--log-cli-level=DEBUG", "-rA", "-vv",
                 "--tb=long", "--showlocals", "-o", "junit_logging=all")
DATA_URI = re.compile(r"base64,([A-Za-z0-9+/]+)=*")
FIRST_FAULTS = ("dashboard-down", "critical-errors", "error-rate-high", "new-error-code")
LEAKY_DIAGNOSTIC = '''
"""A diagnostic tool of the kind that prints its connection string, password and all, and the
requests it made, headers and all."""
import subprocess, sys
password = open(sys.argv[1]).read().strip()
print(f"connecting to postgresql://postgres:{password}@127.0.0.1/trading_agent", flush=True)
print(f"PGPASSWORD={password}", file=sys.stderr, flush=True)
print(open(sys.argv[2]).read(), flush=True)
sys.exit(subprocess.call(sys.argv[3:]))
'''


def shapes_of_secrets(signature, bearer, api_key, password, key) -> str:
    """What a diagnostic prints of the exchange's credentials: secrets no configuration names."""
    return (f"GET /api/v3/account?timestamp=1714560000&signature={signature}\n"
            f"request headers: Authorization: Bearer {bearer}\n"
            f"exchange client: api_key={api_key} recv_window=5000\n"
            f'{{"user": "trader", "password": "{password}"}}\n'
            f"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n{key}\n-----END OPENSSH PRIVATE KEY-----\n")


@dataclass(frozen=True)
class Canary:
    name: str
    value: str
    core: str = ""  # a random part that survives any encoding of the value (hex)

    def forms(self) -> dict[str, str]:
        """How the value can look once written somewhere: in a URL, in JSON, in HTML, in base64."""
        json_form = json.dumps(self.value)[1:-1]
        found = {"raw": self.value, "url-encoded": quote(self.value, safe=""), "url-path": quote(self.value),
                 "url-plus": quote_plus(self.value), "json": json_form, "html": html.escape(self.value),
                 "html-json": html.escape(json_form)}
        for shift, form in enumerate(base64_forms(self.value)):
            found[f"base64 at offset {shift}"] = form
        if self.core:
            found["random part"] = self.core
        return found


def base64_forms(value: str) -> list[str]:
    """The value base64-encoded inside a longer text, at each of the three byte alignments: only the
    characters that depend on the value's bytes alone (SMTP AUTH, data: URIs, attachments)."""
    data, forms = value.encode(), []
    for shift in range(3):
        encoded = base64.b64encode(bytes(shift) + data).decode().rstrip("=")
        forms.append(encoded[-(-8 * shift // 6):8 * (shift + len(data)) // 6])
    return forms


def canary(name: str, template: str) -> Canary:
    core = uuid.uuid4().hex
    return Canary(name, template.format(core), core)


def find_leaks(canaries: list[Canary], artifacts: dict[str, str]) -> list[str]:
    leaks = []
    for where, text in artifacts.items():
        for secret in canaries:
            for form, value in secret.forms().items():
                at = text.find(value)
                if at >= 0:  # the first place, shown with the secret replaced by its name
                    context = text[max(0, at - 160):at + len(value) + 80].replace(value, f"<{secret.name}>")
                    leaks.append(f"{secret.name} ({form}, {text.count(value)}x) in {where}: ...{context!r}...")
                    break
    return leaks


def tree(directory: Path, label: str) -> dict[str, str]:
    """Every file under a directory (lock files, temporaries and in-flight entries too)."""
    found: dict[str, str] = {}
    if not directory.exists():
        return found
    for path in sorted(directory.rglob("*")):
        if not path.is_file():
            continue
        name = f"{label}/{path.relative_to(directory)}"
        found[name] = text = path.read_bytes().decode("utf-8", "replace")
        # A self-contained HTML report carries its attachments as base64 data: URIs; read them too.
        for number, blob in enumerate(DATA_URI.findall(text) if path.suffix == ".html" else []):
            try:
                decoded = base64.b64decode(blob + "=" * (-len(blob) % 4))
            except ValueError:  # not base64 after all
                continue
            found[f"{name} (attachment {number}, base64-decoded)"] = decoded.decode("utf-8", "replace")
    return found


def run_artifacts(run: CadenceRun, label: str, spool: Path, state: Path) -> dict[str, str]:
    """What one run leaves that the next may change: its output, the spool, the state."""
    found = {f"{label}: stdout+stderr": run.output}
    found |= tree(spool, f"{label}: spool")
    found |= tree(state, f"{label}: state")
    return found


# -- the lab, twice


@pytest.fixture
def servers():
    started = {"telegram": ScriptedHTTPServer().start(), "webhook": ScriptedHTTPServer().start(),
               "heartbeat": ScriptedHTTPServer().start()}
    yield started
    for server in started.values():
        server.stop()


def test_canaries_are_used_but_never_written_anywhere(healthy_lab, lab_config, tmp_path, servers):
    telegram, webhook, heartbeat = servers["telegram"], servers["webhook"], servers["heartbeat"]
    token = canary("telegram token", "987654:canary-tg-{}")
    smtp_password = canary("SMTP password", "canary-smtp-{}/+% &x")  # characters that URL-encoding changes
    hook_value = canary("webhook header value", "Bearer canary-hook-{}+/=")
    hook_path = canary("webhook URL path", "canary-hookpath-{}")
    beat = canary("heartbeat URL path", "canary-hb-{}")
    db = Canary("DB password", healthy_lab.db_password())
    assert db.value and db.value == Path(tomllib.loads(lab_config.read_text())["database"]["password_file"]) \
        .read_text().strip()
    shapes = [canary("exchange signature", "canarysig{}"), canary("bearer token", "canary-bearer-{}"),
              canary("exchange api key", "canary-apikey-{}"), canary("JSON password", "canary pw {}"),
              canary("private key", "canaryKEY{}AAAA")]
    canaries = [token, smtp_password, hook_value, hook_path, beat, db, *shapes]
    hook = f"/services/T0CANARY/B0CANARY/{hook_path.value}"

    smtp = SMTPServer(USER, smtp_password.value).start()
    try:
        (tmp_path / "smtp-password").write_text(smtp_password.value + "\n")
        (tmp_path / "leaky_diagnostic.py").write_text(LEAKY_DIAGNOSTIC)
        (tmp_path / "shapes.txt").write_text(shapes_of_secrets(*(shape.value for shape in shapes)))
        lab_settings = tomllib.loads(lab_config.read_text())
        leaky = [sys.executable, str(tmp_path / "leaky_diagnostic.py"), lab_settings["database"]["password_file"],
                 str(tmp_path / "shapes.txt")]
        spool, state, reports = tmp_path / "spool", tmp_path / "state", tmp_path / "reports"
        config = config_with(lab_config, tmp_path / "m.toml", {
            "alerts": {
                "file": str(tmp_path / "alerts.jsonl"), "spool_dir": str(spool), "max_attempts": 2,
                "max_retry_seconds": 2,
                "telegram": {"api_base": telegram.url, "bot_token_env": TOKEN_ENV, "chat_id": "-100123",
                             "timeout_seconds": 3},
                "email": {"host": "127.0.0.1", "port": smtp.port, "ca_file": str(smtp.write_ca(tmp_path / "ca.pem")),
                          "user": USER, "password_file": str(tmp_path / "smtp-password"), "sender": USER,
                          "recipients": ["admin@yourdomain.com"], "timeout_seconds": 3},
                "webhook": {"url": f"{webhook.url}{hook}", "header_name": "Authorization",
                            "header_value_env": HOOK_ENV, "timeout_seconds": 3},
            },
            "heartbeat": {"url": f"{heartbeat.url}/hb/{beat.value}", "timeout_seconds": 3},
            "diagnostics": {name: leaky + argv for name, argv in lab_settings["diagnostics"].items()},
            "policy": {"state_dir": str(state)},
        })
        env = {TOKEN_ENV: token.value, HOOK_ENV: hook_value.value}

        # Run 1: alerts, remediation output, failing assertions; Telegram fails and echoes the token.
        telegram.default = status(502, f"Bad Gateway: upstream refused /bot{token.value}/sendMessage "
                                       f"(token={quote(token.value, safe='')})")
        for fault in FIRST_FAULTS:
            healthy_lab.inject(fault)
        first = run_cadence(config, reports, *LEAKY_OPTIONS, env=env)
        artifacts = run_artifacts(first, "run 1", spool, state)
        assert first.returncode == 14, first.output  # Telegram's alerts wait in the spool
        assert list((spool / "telegram").glob("*.json")), "nothing was spooled: the failing channel was not exercised"
        refused = len(telegram.requests)
        assert refused == 2, "Telegram: two attempts, then down for the run"

        # Run 2: Telegram is back (the spool is flushed); the agent's API breaks (checks cannot look).
        telegram.default = ok()
        healthy_lab.inject("api-500")
        second = run_cadence(config, reports, *LEAKY_OPTIONS, env=env)
        artifacts |= run_artifacts(second, "run 2", spool, state)
        assert second.returncode in (10, 11, 12), second.output
        assert not list(spool.rglob("*.json")) and not list(spool.rglob("*.inflight")), "the spool was not flushed"
        artifacts |= tree(reports, "reports dir")  # both runs' HTML and JUnit reports, the ledger and the trail's pages
        assert len(list(reports.glob("daily-*.html"))) == len(list(reports.glob("daily-*.xml"))) == 2, sorted(reports.iterdir())
        artifacts["alerts file"] = (tmp_path / "alerts.jsonl").read_text()
    finally:
        smtp.stop()

    # Each canary was live: used where it is needed, so its absence elsewhere means something.
    assert telegram.requests, "Telegram was never called"
    for request in telegram.requests:
        assert request.path == f"/bot{token.value}/sendMessage", request.path
    assert any(r.json()["text"].startswith("🚨 CRITICAL:") for r in telegram.requests[refused:])  # flushed
    assert smtp.received and all(mail.login == USER and mail.tls for mail in smtp.received)  # AUTH took the password
    assert webhook.requests and all(r.headers["Authorization"] == hook_value.value and r.path == hook
                                    for r in webhook.requests)
    called = [r.path for r in heartbeat.requests]
    assert called.count(f"/hb/{beat.value}/start") == 2 and f"/hb/{beat.value}/fail" in called, called
    assert all(path.startswith(f"/hb/{beat.value}") for path in called), called
    everything = "\n".join(artifacts.values())
    assert "connecting to postgresql://postgres:" in everything, "the leaky diagnostic's output never reached a report"
    for masked in ("signature=***", "Authorization: ***", "api_key=*** recv_window", '"password": "***"',
                   "-----BEGIN OPENSSH PRIVATE KEY-----***-----END OPENSSH PRIVATE KEY-----"):
        assert masked in everything, f"{masked}: the shape never reached a report, masked"
    not_delivered = [line for line in first.output.splitlines() if line.startswith("NOT DELIVERED: telegram")]
    assert not_delivered and "/bot***/sendMessage" in not_delivered[0], first.output  # the echo, redacted

    # What the servers got, minus the one place each secret belongs.
    for number, request in enumerate(telegram.requests):
        artifacts[f"Telegram request {number} (headers and body)"] = json.dumps(request.headers) + request.body.decode()
    for number, request in enumerate(webhook.requests):
        others = {name: value for name, value in request.headers.items() if name != "Authorization"}
        artifacts[f"webhook request {number} (other headers, body)"] = json.dumps(others) + request.body.decode()
    for number, request in enumerate(heartbeat.requests):
        artifacts[f"heartbeat request {number} (headers and body)"] = json.dumps(request.headers) + request.body.decode()
    for number, mail in enumerate(smtp.received):
        artifacts[f"mail {number}"] = mail.mail_from + " ".join(mail.rcpt_tos) + mail.message.as_string()

    leaks = find_leaks(canaries, artifacts)
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks)


# -- the fast one: a check of its own whose failure carries the password


PROJECT_INI = """
[pytest]
addopts = --strict-markers -p no:cacheprovider
junit_family = xunit1
markers =
    daily: d
    weekly: w
    monthly: m
    quarterly: q
    emergency: e
    check(id, severity, why): identity
    remediate(name): remediation
"""

PROJECT_CONFTEST = """
import pytest
pytest_plugins = ["plugin"]

@pytest.fixture(scope="session")
def host():
    return None

@pytest.fixture(scope="session")
def services():
    return None
"""

DB_CHECKS = '''
import logging
import pytest

PASSWORD_FILE = {password_file!r}


def login(password):
    raise ConnectionError(f"FATAL: password authentication failed (tried postgres:{{password}}@127.0.0.1)")


@pytest.mark.daily
@pytest.mark.check("DB-901", severity="critical", why="the agent cannot trade without its database")
def test_database_accepts_the_login():
    password = open(PASSWORD_FILE).read().strip()
    print(f"trying postgresql://postgres:{{password}}@127.0.0.1:5432/trading_agent")
    logging.getLogger("db").warning("login refused with password %s", password)
    assert password == "the expected one", f"login refused for postgres with password {{password}}"


@pytest.mark.daily
@pytest.mark.check("DB-902", severity="critical", why="the agent cannot trade without its database")
def test_database_answers():
    password = open(PASSWORD_FILE).read().strip()
    login(password)
'''


def test_a_failing_check_that_prints_the_db_password_leaves_no_trace_of_it(tmp_path):
    password = Canary("DB password", secrets.token_urlsafe(24))
    project = tmp_path / "project"
    project.mkdir()
    password_file = tmp_path / "db-password"
    password_file.write_text(password.value + "\n")
    (project / "pytest.ini").write_text(PROJECT_INI)
    (project / "conftest.py").write_text(PROJECT_CONFTEST)
    (project / "test_db.py").write_text(DB_CHECKS.format(password_file=str(password_file)))
    config = tmp_path / "maintenance.toml"
    config.write_text(textwrap.dedent(f"""
        [database]
        password_file = "{password_file}"
        [alerts]
        file = "{tmp_path}/alerts.jsonl"
        spool_dir = "{tmp_path}/spool"
        [policy]
        state_dir = "{tmp_path}/state"
        [reports]
        dir = "{tmp_path}/reports"
    """))
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "daily", f"--maintenance-config={config}", *LEAKY_OPTIONS],
        cwd=project, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    output = completed.stdout + completed.stderr

    assert completed.returncode == 11, output  # DB-901 failed (a finding), DB-902 unknown
    assert "login refused for postgres with password ***" in output, output  # the message is there, masked
    assert "could not check: ConnectionError: FATAL: password authentication failed" in output, output
    artifacts = {"stdout+stderr": output, "alerts file": (tmp_path / "alerts.jsonl").read_text()}
    for directory in ("reports", "spool", "state"):
        artifacts |= tree(tmp_path / directory, directory)
    assert any(name.endswith(".html") for name in artifacts) and any(name.endswith(".xml") for name in artifacts)
    leaks = find_leaks([password], artifacts)
    assert not leaks, "the DB password leaked:\n" + "\n".join(leaks)
