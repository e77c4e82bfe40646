"""Alert channels end to end: real daily runs against the lab, alerting real local servers.

Each test runs the daily cadence as cron does (a pytest subprocess, see conftest.run_cadence) with
a configuration that adds the three network channels: a scripted Telegram Bot API and a webhook
receiver (http.server) and an SMTP server requiring STARTTLS and AUTH (aiosmtpd), all from
tests/alert_servers.py. The lab's faults make the alerts:

    dashboard-down (with --remediation=off)  SVC-001[trading-dashboard] critical: sent at once
                                             (WEB-001 names it as its cause: no alert of its own)
    critical-errors                          ERR-002 warning: in the digest
    circuit-breakers-open                    ERR-004 warning: in the digest, which is critical: the run
                                             ends with SVC-001 failed (its level follows the exit status)

What each server received is compared with what the run wrote to the file channel (every message
goes there too): the message a channel must carry is Message.from_alert(record), whose key is the
webhook's "key" and the mail's Message-ID, and whose rendering is the Telegram text.

Retries are real here (max_attempts 2, a 2 s budget): a few seconds per run at most. No test
asserts how long anything took, except lower bounds that a sleep guarantees.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from alerts.message import Alert, Message
from conftest import CadenceRun, config_with, run_cadence
from tests.alert_servers import Reply, ScriptedHTTPServer, SMTPServer, ok, rate_limited, status

pytestmark = pytest.mark.lab

USER = "alerts@example.com"
RECIPIENT = "admin@yourdomain.com"
CHAT_ID = "-100123"
TOKEN_ENV, HOOK_ENV = "E2E_TELEGRAM_BOT_TOKEN", "E2E_WEBHOOK_TOKEN"
FAULTS = ("dashboard-down", "critical-errors", "circuit-breakers-open")
CRITICAL_PREFIX = "🚨 CRITICAL: [SVC-001] trading-box: test_service_is_running[trading-dashboard]"  # the lab's box
DIGEST_PREFIX = "🚨 CRITICAL: [DIGEST] trading-box: daily run: "
FAILURES_REMAIN, ALERTS_SPOOLED = 11, 14


class Receiver(ScriptedHTTPServer):
    """A scripted HTTP server that also remembers how it answered each request, and when."""

    def __init__(self):
        super().__init__()
        self.answers: list[tuple[Reply, float]] = []  # parallel to self.requests

    def _next(self, request):
        reply = super()._next(request)
        with self._lock:
            self.answers.append((reply, time.monotonic()))
        return reply

    def accepted(self, since: int = 0) -> list:
        """The requests it answered 2xx (the ones the sender counts as delivered), from index `since`."""
        with self._lock:
            pairs = list(zip(self.requests, self.answers, strict=False))[since:]
        return [request for request, (reply, _) in pairs if 200 <= reply.status < 300 and not reply.hang]

    def texts(self, since: int = 0) -> list[str]:
        return [request.json()["text"] for request in self.accepted(since)]

    def keys(self, since: int = 0) -> list[str]:
        return [request.json()["key"] for request in self.accepted(since)]


@dataclass
class Rig:
    """The three servers, the configuration that points at them, and the run's secrets."""

    tmp: Path
    lab_config: Path
    telegram: Receiver
    webhook: Receiver
    smtp: SMTPServer
    token: str = field(default_factory=lambda: f"123456:e2e-{uuid.uuid4().hex}")
    hook_secret: str = field(default_factory=lambda: f"Bearer e2e-{uuid.uuid4().hex}")
    password: str = ""
    email_overrides: dict = field(default_factory=dict)
    alerts_offset: int = 0

    @property
    def config(self) -> Path:
        return self.tmp / "m.toml"

    @property
    def spool(self) -> Path:
        return self.tmp / "spool"

    @property
    def alerts_file(self) -> Path:
        return self.tmp / "alerts.jsonl"

    def write_config(self) -> Path:
        password_file = self.tmp / "smtp-password"
        password_file.write_text(self.password + "\n")
        ca_file = self.smtp.write_ca(self.tmp / f"smtp-ca-{self.smtp.port}.pem")
        return config_with(self.lab_config, self.config, {
            "alerts": {
                "file": str(self.alerts_file), "spool_dir": str(self.spool), "fallback": ["email", "file"],
                "max_attempts": 2, "max_retry_seconds": 2,
                "telegram": {"api_base": self.telegram.url, "bot_token_env": TOKEN_ENV, "chat_id": CHAT_ID,
                             "timeout_seconds": 3},
                "email": {"host": "127.0.0.1", "port": self.smtp.port, "ca_file": str(ca_file), "user": USER,
                          "password_file": str(password_file), "sender": USER, "recipients": [RECIPIENT],
                          "timeout_seconds": 3, **self.email_overrides},
                "webhook": {"url": f"{self.webhook.url}/trading", "header_name": "Authorization",
                            "header_value_env": HOOK_ENV, "timeout_seconds": 3},
            },
            "policy": {"state_dir": str(self.tmp / "state")},
            "resources": {"cpu_sample_seconds": 0.1},  # (thresholds at 100% in lab_config) time for the rest
        })

    def run(self, *args: str) -> CadenceRun:
        self.alerts_offset = self.alerts_file.stat().st_size if self.alerts_file.exists() else 0
        return run_cadence(self.config, self.tmp / "reports", "--remediation=off", *args,
                           env={TOKEN_ENV: self.token, HOOK_ENV: self.hook_secret})

    def messages(self) -> list[Message]:
        """What the last run sent, as the file channel recorded it (digests whole), in order."""
        with self.alerts_file.open() as handle:
            handle.seek(self.alerts_offset)
            records = [json.loads(line) for line in handle if line.strip()]
        return [Message.from_alert(Alert(**record)) for record in records]

    def spooled(self, channel: str | None = None) -> dict[str, list[str]]:
        """channel -> the keys of its pending entries; every other file is reported under '?'."""
        found: dict[str, list[str]] = {}
        if not self.spool.is_dir():
            return found
        for path in sorted(self.spool.rglob("*")):
            if path.is_dir() or path.name == "flush.lock":
                continue
            name = path.parent.name if path.suffix == ".json" and path.parent.parent == self.spool else "?"
            found.setdefault(name, []).append(path.stem if name != "?" else str(path.relative_to(self.spool)))
        return found if channel is None else {channel: found.get(channel, [])}

    def spooled_message(self, channel: str, key: str) -> Message:
        data = json.loads((self.spool / channel / f"{key}.json").read_text())
        return Message.from_dict(data["message"])

    def mails(self, since: int = 0) -> list[str]:
        """Message-IDs of the mails the SMTP server accepted, from index `since`."""
        return [mail.message["Message-ID"] for mail in self.smtp.received[since:]]


def mail_id(message: Message) -> str:
    return f"<{message.key}@trading-maintenance>"


@pytest.fixture
def rig(healthy_lab, lab_config, tmp_path):
    password = f"e2e-{uuid.uuid4().hex}"
    telegram, webhook, smtp = Receiver().start(), Receiver().start(), SMTPServer(USER, password).start()
    rig = Rig(tmp_path, lab_config, telegram, webhook, smtp, password=password)
    rig.write_config()
    for fault in FAULTS:
        healthy_lab.inject(fault)
    yield rig
    telegram.stop()
    webhook.stop()
    if rig.smtp.controller._thread is not None:  # test 5 stops one itself
        rig.smtp.stop()


def split(messages: list[Message]) -> tuple[Message, Message]:
    """The run's two messages: the critical one sent at once, then the digest."""
    assert [m.alert.kind for m in messages] == ["problem", "digest"], [m.subject for m in messages]
    critical, digest = messages
    assert critical.alert.check_id == "SVC-001" and critical.severity == "critical", critical
    assert digest.severity == "critical", "the run ends with SVC-001 failed: its digest is no less urgent"
    assert {item["check_id"] for item in digest.alert.items} == {"ERR-002", "ERR-004"}, digest.alert.items
    return critical, digest


def not_delivered_lines(run: CadenceRun) -> list[str]:
    return [line for line in run.output.splitlines() if line.startswith("NOT DELIVERED: ")]


def test_all_channels_healthy_each_gets_the_critical_alert_at_once_and_the_digest(rig):
    run = rig.run()

    assert run.returncode == FAILURES_REMAIN, run.output
    critical, digest = split(rig.messages())
    # Telegram: the guide's template, the configured chat, the token in the Bot API path; critical first.
    assert rig.telegram.texts() == [critical.rendered(), digest.rendered()]
    assert rig.telegram.texts()[0].startswith(CRITICAL_PREFIX + "\nservice trading-dashboard is STOPPED")
    assert rig.telegram.texts()[1].startswith(DIGEST_PREFIX + "2 still wrong; the run ends with ")
    assert "failed\nStill wrong:\n" in rig.telegram.texts()[1]
    assert "[ERR-004]" in rig.telegram.texts()[1] and "[ERR-002]" in rig.telegram.texts()[1]
    for request in rig.telegram.requests:
        assert request.path == f"/bot{rig.token}/sendMessage" and request.json()["chat_id"] == CHAT_ID
    # Webhook: each alert once, as JSON with its key, carrying the secret header.
    assert rig.webhook.keys() == [critical.key, digest.key]
    assert all(r.headers["Authorization"] == rig.hook_secret and r.path == "/trading" for r in rig.webhook.requests)
    assert rig.webhook.accepted()[0].json()["text"] == critical.rendered()
    # Email: over STARTTLS, logged in, subject in the template.
    assert rig.mails() == [mail_id(critical), mail_id(digest)]
    first = rig.smtp.received[0]
    assert first.tls and first.login == USER and first.rcpt_tos == [RECIPIENT]
    assert first.message["Subject"] == CRITICAL_PREFIX
    assert rig.smtp.received[1].message["Subject"].startswith(DIGEST_PREFIX)

    assert len(rig.telegram.requests) == len(rig.webhook.requests) == 2  # nothing retried
    assert rig.spooled() == {}
    assert not_delivered_lines(run) == [], run.output
    assert "2 alert message(s) sent to every channel they were for;" in run.output


def test_telegram_429_is_waited_out_and_the_message_arrives_once(rig):
    rig.telegram.reply(rate_limited(1), ok())
    run = rig.run()

    assert run.returncode == FAILURES_REMAIN, run.output
    critical, digest = split(rig.messages())
    texts = [request.json()["text"] for request in rig.telegram.requests]
    assert texts == [critical.rendered(), critical.rendered(), digest.rendered()]  # the 429, its retry, the digest
    assert [reply.status for reply, _ in rig.telegram.answers] == [429, 200, 200]
    assert rig.telegram.texts().count(critical.rendered()) == 1  # accepted exactly once
    (_, refused_at), (_, retried_at) = rig.telegram.answers[:2]
    assert retried_at - refused_at >= 0.9  # retry_after=1 was honoured (a lower bound only)
    assert rig.webhook.keys() == [critical.key, digest.key] and rig.mails() == [mail_id(critical), mail_id(digest)]
    assert rig.spooled() == {}
    assert not_delivered_lines(run) == [], run.output


def test_telegram_5xx_spools_and_the_next_run_delivers_it_exactly_once(rig):
    rig.telegram.default = status(502, "Bad Gateway")
    first = rig.run()

    assert first.returncode == ALERTS_SPOOLED, first.output
    critical, digest = split(rig.messages())
    assert rig.spooled() == {"telegram": sorted([critical.key, digest.key])}
    assert rig.spooled_message("telegram", critical.key).rendered() == critical.rendered()
    entry = json.loads((rig.spool / "telegram" / f"{critical.key}.json").read_text())
    assert entry["delivered_to"] == ["email", "file", "webhook"] and "HTTP 502" in entry["reason"]
    # Two attempts for the first message; then Telegram counts as down for the run, so no more tries.
    assert len(rig.telegram.requests) == 2 and rig.telegram.accepted() == []
    lines = not_delivered_lines(first)
    assert f"NOT DELIVERED: telegram {critical.key}: spooled after 2 attempts (HTTP 502: Bad Gateway)" in lines, \
        first.output
    assert any(line.startswith(f"NOT DELIVERED: telegram {digest.key}: spooled (telegram was given up on")
               for line in lines), first.output
    assert rig.webhook.keys() == [critical.key, digest.key] and rig.mails() == [mail_id(critical), mail_id(digest)]

    # Telegram is back; the fault is still there (so the same findings are not alerted again).
    rig.telegram.default = ok()
    seen = (len(rig.telegram.requests), len(rig.webhook.requests), len(rig.smtp.received))
    second = rig.run()

    assert second.returncode == FAILURES_REMAIN, second.output
    new = rig.messages()
    expected = sorted([critical.rendered(), digest.rendered()] + [m.rendered() for m in new])
    assert sorted(rig.telegram.texts(seen[0])) == expected
    assert rig.telegram.texts(seen[0]).count(critical.rendered()) == 1
    assert rig.telegram.texts(seen[0]).count(digest.rendered()) == 1
    assert rig.spooled() == {} and not_delivered_lines(second) == [], second.output
    # The other channels had it already: the flush does not send them a second copy.
    assert rig.webhook.keys(seen[1]) == [m.key for m in new] and rig.mails(seen[2]) == [mail_id(m) for m in new]

    seen = len(rig.telegram.requests)
    third = rig.run()
    assert third.returncode == FAILURES_REMAIN, third.output
    again = rig.telegram.texts(seen)
    assert critical.rendered() not in again and digest.rendered() not in again
    assert sorted(again) == sorted(m.rendered() for m in rig.messages())
    assert rig.spooled() == {}


def test_telegram_403_is_not_retried_and_goes_to_email_instead_of_the_spool(rig):
    rig.telegram.default = status(403, "Forbidden: bot was blocked by the user")
    rig.email_overrides = {"severities": ["info"]}  # neither the critical alert nor the digest is email's own
    rig.write_config()
    run = rig.run()

    # First contact, finding 3: refused by its channel is not sent, whatever the fallback did.
    assert run.returncode == ALERTS_SPOOLED, run.output
    critical, digest = split(rig.messages())
    texts = [request.json()["text"] for request in rig.telegram.requests]
    assert texts == [critical.rendered(), digest.rendered()]  # one request per message: no retry
    assert rig.telegram.accepted() == []
    # Both mailed only because Telegram refused them, and the fallback is email. Once each.
    assert rig.mails() == [mail_id(critical), mail_id(digest)]
    assert rig.webhook.keys() == [critical.key, digest.key]
    assert rig.spooled() == {}
    assert not_delivered_lines(run) == [
        f"NOT DELIVERED: telegram {key}: refused, not delivered; only the fallback email has it "
        f"(HTTP 403: Forbidden: bot was blocked by the user)" for key in (critical.key, digest.key)], run.output
    assert "0 alert message(s) sent to every channel they were for; 2 not (below)" in run.output


def test_all_channels_down_spools_everything_and_a_healthy_run_delivers_each_once_per_channel(rig):
    rig.telegram.default = status(500, "Internal Server Error")
    rig.webhook.default = status(500)
    rig.smtp.stop()
    started = time.monotonic()
    down = rig.run()

    assert down.returncode == ALERTS_SPOOLED, down.output
    critical, digest = split(rig.messages())
    keys = sorted([critical.key, digest.key])
    assert rig.spooled() == {"email": keys, "telegram": keys, "webhook": keys}
    lines = not_delivered_lines(down)
    for channel in ("telegram", "email", "webhook"):
        for key in keys:
            assert any(line.startswith(f"NOT DELIVERED: {channel} {key}: spooled") for line in lines), down.output
    assert any("email" in line and "cannot reach 127.0.0.1" in line for line in lines), down.output
    assert rig.telegram.accepted() == [] and rig.webhook.accepted() == []
    assert time.monotonic() - started < 60  # an outage costs one retry budget per channel, not a hang

    # Everything comes back (the mail relay on a new port, so the configuration follows it).
    rig.telegram.default = rig.webhook.default = ok()
    rig.smtp = SMTPServer(USER, rig.password).start()
    rig.write_config()
    seen = (len(rig.telegram.requests), len(rig.webhook.requests))
    healthy = rig.run()

    assert healthy.returncode == FAILURES_REMAIN, healthy.output
    assert rig.messages() == []  # the same findings: nothing new is owed, only the spool
    assert sorted(rig.telegram.texts(seen[0])) == sorted([critical.rendered(), digest.rendered()])
    assert sorted(rig.webhook.keys(seen[1])) == keys
    assert sorted(rig.mails()) == sorted([mail_id(critical), mail_id(digest)])
    assert len(rig.telegram.requests) - seen[0] == 2 and len(rig.webhook.requests) - seen[1] == 2
    assert rig.spooled() == {}
    assert not_delivered_lines(healthy) == [], healthy.output
