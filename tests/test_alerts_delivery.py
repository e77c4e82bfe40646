"""Alert delivery against real servers on 127.0.0.1: a scripted Telegram Bot API and webhook
receiver (http.server) and an SMTP server requiring STARTTLS and AUTH (aiosmtpd, trustme).

Time: retries sleep through an injected clock that records the waits and moves its own
monotonic forward, so no test really waits for a backoff; the only real waits are the 0.5 s
client timeouts against a hanging server. Nothing asserts how long something took, except
generous upper bounds that only a hang-forever bug would break.
"""

from __future__ import annotations

import json
import logging
import time
import tomllib

import pytest
from pydantic import ValidationError

from alerts.channel import Permanent, Transient
from alerts.channels.telegram import TelegramChannel
from alerts.delivery import DELIVERED, FALLBACK, LOST, SPOOLED, Delivery, deliver, flush_spool
from alerts.message import Alert, Message
from alerts.spool import Spool
from configuration import describe
from configuration.alerts import AlertSettings
from core.redact import RedactingFilter, Redactor, install
from tests.alert_servers import ScriptedHTTPServer, SMTPServer, hang, ok, rate_limited, refused_port, status

TOKEN = "987654:CANARY-bot-token_Zq"
PASSWORD = "CANARY pass/word+%"  # characters that change under URL encoding
HOOK_SECRET = "Bearer CANARY-hook-secret"
SECRETS = (TOKEN, PASSWORD, HOOK_SECRET)
USER = "alerts@example.com"
TEMPLATES = {"critical": "🚨 CRITICAL: ", "warning": "⚠️ WARNING: ", "info": "ℹ️ INFO: "}


def alert(number: int = 1, severity: str = "critical") -> Alert:
    return Alert(check_id=f"TST-{number:03}", severity=severity, kind="problem", title=f"test_thing[{number}]",
                 message=f"something broke #{number}", at=f"2025-01-01T00:00:{number:02}+00:00")


class Clock:
    """sleep() records and skips; monotonic() is real time plus everything skipped."""

    def __init__(self, timeline: list):
        self.sleeps: list[float] = []
        self.timeline = timeline
        self.skipped = 0.0

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.timeline.append(("sleep", seconds))
        self.skipped += seconds

    def monotonic(self) -> float:
        return time.monotonic() + self.skipped


@pytest.fixture
def timeline() -> list:
    return []


@pytest.fixture
def clock(timeline) -> Clock:
    return Clock(timeline)


@pytest.fixture(autouse=True)
def secrets_in_env(monkeypatch):
    monkeypatch.setenv("TEST_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("TEST_EMAIL_PASS", PASSWORD)
    monkeypatch.setenv("TEST_HOOK_SECRET", HOOK_SECRET)


@pytest.fixture
def telegram(timeline):
    server = ScriptedHTTPServer(on_request=lambda request: timeline.append(("request", request.path))).start()
    yield server
    server.stop()


@pytest.fixture
def webhook():
    server = ScriptedHTTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp():
    server = SMTPServer(USER, PASSWORD).start()
    yield server
    server.stop()


def telegram_table(server: ScriptedHTTPServer, **overrides) -> dict:
    return {"api_base": server.url, "bot_token_env": "TEST_BOT_TOKEN", "chat_id": "-100123",
            "timeout_seconds": 5, **overrides}


def email_table(smtp: SMTPServer, tmp_path, port: int | None = None, **overrides) -> dict:
    return {"host": "127.0.0.1", "port": port or smtp.port, "ca_file": str(smtp.write_ca(tmp_path / "ca.pem")),
            "user": USER, "password_env": "TEST_EMAIL_PASS", "sender": USER,
            "recipients": ["admin@yourdomain.com"], "timeout_seconds": 5, **overrides}


def webhook_table(server: ScriptedHTTPServer, **overrides) -> dict:
    return {"url": f"{server.url}/trading", "header_name": "Authorization", "header_value_env": "TEST_HOOK_SECRET",
            "timeout_seconds": 5, **overrides}


def settings_for(tmp_path, **alerts) -> AlertSettings:
    return AlertSettings.model_validate({"file": str(tmp_path / "alerts.jsonl"), "spool_dir": str(tmp_path / "spool"),
                                         "fallback": ["file"], **alerts})


def spooled_files(tmp_path, channel: str) -> list:
    return sorted((tmp_path / "spool" / channel).glob("*.json"))


def spool_leftovers(tmp_path) -> list[str]:
    """Everything in the spool except the lock file: entries, in-flight files, temporaries."""
    return sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "spool").rglob("*")
                  if p.is_file() and p.name != "flush.lock")


# -- configuration


DOCUMENTED = """
[alerts]
file = "/var/log/trading-maintenance/alerts.jsonl"
spool_dir = "/var/lib/trading-maintenance/spool"
fallback = ["email", "file"]
max_attempts = 3
max_retry_seconds = 30
[alerts.telegram]
api_base = "https://api.telegram.org"
bot_token_env = "TELEGRAM_BOT_TOKEN"
chat_id = -100123
severities = ["critical", "warning", "info"]
timeout_seconds = 10
[alerts.email]
host = "smtp.example.com"
port = 587
starttls = true
user = "alerts@example.com"
password_env = "EMAIL_PASS"
sender = "alerts@example.com"
recipients = ["admin@yourdomain.com"]
severities = ["critical", "warning"]
timeout_seconds = 10
[alerts.webhook]
url = "https://hooks.example.com/trading"
severities = ["critical"]
header_name = "Authorization"
header_value_env = "WEBHOOK_TOKEN"
"""


def test_documented_section_loads_and_a_missing_env_var_is_not_a_load_error(monkeypatch):
    for name in ("TELEGRAM_BOT_TOKEN", "EMAIL_PASS", "WEBHOOK_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    settings = AlertSettings.model_validate(tomllib.loads(DOCUMENTED)["alerts"])
    assert settings.enabled() == ["telegram", "email", "webhook"]
    assert settings.telegram.chat_id == "-100123" and settings.email.port == 587
    # No variable is set: the only secret is the webhook's URL, a secret whatever it holds, its path too.
    hook = ["https://hooks.example.com/trading", "/trading", "hooks.example.com/trading"]
    assert settings.fallback == ["email", "file"] and settings.secrets() == hook
    monkeypatch.setenv("EMAIL_PASS", "s3cret")
    assert settings.secrets() == ["s3cret", *hook]


def test_only_the_file_channel_is_required():
    settings = AlertSettings.model_validate({"file": "/tmp/a.jsonl"})
    assert settings.enabled() == [] and settings.fallback == ["email", "file"]


@pytest.mark.parametrize("table, key, expected", [
    ({"fallback": ["pager"]}, "fallback.0", "'telegram', 'email', 'webhook' or 'file'"),
    ({"fallback": ["webhook"]}, "(top level)", "[alerts.webhook] is not configured"),
    ({"telegram": {"bot_token_env": "T", "chat_id": "1", "severities": ["urgent"]}}, "telegram.severities.0",
     "'info', 'warning' or 'critical'"),
    ({"telegram": {"bot_token_file": "/nonexistent/token", "chat_id": "1"}}, "telegram.bot_token_file",
     "does not exist"),
    ({"telegram": {"chat_id": "1"}}, "telegram", "bot_token_env or bot_token_file is required"),
    ({"telegram": {"bot_token_env": "T", "chat_id": "1", "bot_token": "123:abc"}}, "telegram.bot_token",
     "Extra inputs"),
    ({"email": {"host": "h", "sender": "a@b", "recipients": ["c@d"], "user": "u", "password_file": "/nope"}},
     "email.password_file", "does not exist"),
    ({"email": {"host": "h", "sender": "a@b", "recipients": ["c@d"], "user": "u", "password_env": "P",
                "starttls": False}}, "email", "in clear"),
    ({"webhook": {"url": "https://h/x", "header_name": "Authorization"}}, "webhook", "header_value_env"),
])
def test_bad_alert_settings_name_the_key(tmp_path, table, key, expected):
    with pytest.raises(ValidationError) as error:
        AlertSettings.model_validate(table)
    message = describe(tmp_path / "m.toml", error.value)
    assert f"  {key}: " in message and expected in message, message


def test_secret_file_is_read_and_listed_for_redaction(tmp_path):
    (tmp_path / "token").write_text(TOKEN + "\n")
    settings = settings_for(tmp_path, telegram={"bot_token_file": str(tmp_path / "token"), "chat_id": "1"})
    assert settings.secrets() == [TOKEN]


# -- each channel delivers


def test_telegram_receives_chat_id_and_the_severity_template(tmp_path, telegram):
    settings = settings_for(tmp_path, telegram=telegram_table(telegram))
    result = deliver([alert(1, "critical"), alert(2, "warning"), alert(3, "info")], settings)

    assert [o.status for o in result.outcomes] == [DELIVERED] * 6  # file + telegram, three times
    assert [r.path for r in telegram.requests] == [f"/bot{TOKEN}/sendMessage"] * 3
    for request, severity, number in zip(telegram.requests, TEMPLATES, (1, 2, 3), strict=False):
        body = request.json()
        assert body["chat_id"] == "-100123"
        assert body["text"] == f"{TEMPLATES[severity]}[TST-00{number}] test_thing[{number}]\nsomething broke #{number}"
    assert len((tmp_path / "alerts.jsonl").read_text().splitlines()) == 3
    assert not result.all_channels_down and result.ok


def test_email_arrives_over_starttls_with_auth(tmp_path, smtp):
    settings = settings_for(tmp_path, email=email_table(smtp, tmp_path))
    message = Message.from_alert(alert(1, "critical"))
    result = deliver([message, Message.from_alert(alert(2, "info"))], settings)  # info: not for email

    assert result.outcome(message.key, "email").status == DELIVERED
    assert len(smtp.received) == 1
    mail = smtp.received[0]
    assert mail.tls and mail.login == USER
    assert mail.rcpt_tos == ["admin@yourdomain.com"]
    assert mail.message["Subject"] == "🚨 CRITICAL: [TST-001] test_thing[1]"
    assert mail.message["Message-ID"] == f"<{message.key}@trading-maintenance>"
    assert "something broke #1" in mail.message.get_content()


def test_webhook_receives_the_alert_as_json_with_its_secret_header(tmp_path, webhook):
    settings = settings_for(tmp_path, webhook=webhook_table(webhook))
    message = Message.from_alert(alert(4, "warning"))
    assert deliver([message], settings).outcome(message.key, "webhook").status == DELIVERED

    (request,) = webhook.requests
    assert request.path == "/trading" and request.headers["Authorization"] == HOOK_SECRET
    body = request.json()
    assert body["key"] == message.key and body["severity"] == "warning"
    assert body["alert"]["check_id"] == "TST-004" and body["text"].startswith(TEMPLATES["warning"])


# -- retries


def test_telegram_429_retry_after_is_honoured(tmp_path, telegram, clock, timeline):
    telegram.reply(rate_limited(7), ok())
    settings = settings_for(tmp_path, telegram=telegram_table(telegram))
    message = Message.from_alert(alert())
    result = deliver([message], settings, sleep=clock.sleep, monotonic=clock.monotonic)

    assert result.outcome(message.key, "telegram").status == DELIVERED
    assert result.outcome(message.key, "telegram").attempts == 2
    path = f"/bot{TOKEN}/sendMessage"
    assert timeline == [("request", path), ("sleep", 7), ("request", path)]


def test_retry_after_beyond_the_budget_is_spooled_without_waiting(tmp_path, telegram, clock):
    telegram.reply(rate_limited(120))
    settings = settings_for(tmp_path, telegram=telegram_table(telegram), max_retry_seconds=30)
    message = Message.from_alert(alert())
    outcome = deliver([message], settings, sleep=clock.sleep, monotonic=clock.monotonic).outcome(message.key, "telegram")

    assert outcome.status == SPOOLED and "120s would exceed the 30s retry budget" in outcome.reason
    assert clock.sleeps == [] and len(telegram.requests) == 1
    assert len(spooled_files(tmp_path, "telegram")) == 1


def test_5xx_is_retried_a_bounded_number_of_times_then_spooled(tmp_path, telegram, clock):
    telegram.reply(status(500), status(502), status(500), ok())
    settings = settings_for(tmp_path, telegram=telegram_table(telegram), max_attempts=3)
    first, second = Message.from_alert(alert(1)), Message.from_alert(alert(2))
    result = deliver([first, second], settings, sleep=clock.sleep, monotonic=clock.monotonic)

    assert result.outcome(first.key, "telegram").status == SPOOLED
    assert result.outcome(first.key, "telegram").attempts == 3
    assert "HTTP 500" in result.outcome(first.key, "telegram").reason
    assert len(telegram.requests) == 3 and clock.sleeps == [1, 2]  # backoff between attempts
    # The channel is down for the rest of the run: the next alert is spooled without waiting on it.
    assert result.outcome(second.key, "telegram").status == SPOOLED
    assert result.outcome(second.key, "telegram").attempts == 0
    assert result.all_channels_down
    entries = spooled_files(tmp_path, "telegram")
    assert [p.stem for p in entries] == sorted([first.key, second.key])
    data = json.loads(entries[0].read_text())
    assert data["message"]["alert"]["check_id"].startswith("TST-") and data["delivered_to"] == ["file"]
    assert not list((tmp_path / "spool").rglob("*.tmp"))


def test_hanging_server_times_out_is_retried_bounded_then_spooled(tmp_path, telegram, clock):
    telegram.reply(hang(10), hang(10), hang(10))
    settings = settings_for(tmp_path, telegram=telegram_table(telegram, timeout_seconds=0.5))
    message = Message.from_alert(alert())
    started = time.monotonic()
    outcome = deliver([message], settings, sleep=clock.sleep, monotonic=clock.monotonic).outcome(message.key, "telegram")

    assert outcome.status == SPOOLED and outcome.attempts == 3 and "no answer within 0.5s" in outcome.reason
    assert len(telegram.requests) == 3
    assert time.monotonic() - started < 10  # three 0.5 s timeouts, not the server's 10 s hang
    assert len(spooled_files(tmp_path, "telegram")) == 1


def test_smtp_4xx_is_transient_and_5xx_permanent(tmp_path, smtp, clock):
    smtp.data_replies.extend(["451 4.3.0 try again later"] * 3)
    settings = settings_for(tmp_path, email=email_table(smtp, tmp_path))
    message = Message.from_alert(alert(1))
    outcome = deliver([message], settings, sleep=clock.sleep, monotonic=clock.monotonic).outcome(message.key, "email")
    assert outcome.status == SPOOLED and outcome.attempts == 3 and "451" in outcome.reason

    smtp.data_replies.append("554 5.7.1 rejected as spam")
    message = Message.from_alert(alert(2))
    outcome = deliver([message], settings, sleep=clock.sleep, monotonic=clock.monotonic).outcome(message.key, "email")
    assert outcome.status == FALLBACK and outcome.via == "file" and outcome.attempts == 1 and "554" in outcome.reason
    assert smtp.received == []


# -- permanent refusals and fallback


def test_403_is_not_retried_and_goes_to_the_fallback_channel(tmp_path, telegram, smtp, clock):
    telegram.default = status(403, "Forbidden: bot was blocked by the user")
    settings = settings_for(tmp_path, telegram=telegram_table(telegram), email=email_table(smtp, tmp_path),
                            fallback=["email", "file"])
    critical, info = Message.from_alert(alert(1, "critical")), Message.from_alert(alert(2, "info"))
    result = deliver([critical, info], settings, sleep=clock.sleep, monotonic=clock.monotonic)

    for message in (critical, info):
        outcome = result.outcome(message.key, "telegram")
        assert outcome.status == FALLBACK and outcome.via == "email" and outcome.attempts == 1
        assert "bot was blocked" in outcome.reason
    assert len(telegram.requests) == 2 and clock.sleeps == []
    # The critical one was already mailed (email carries critical): the fallback does not mail it twice.
    # The info one is not for email, but the fallback takes it there.
    assert sorted(m.message["Subject"].split(": ", 1)[1] for m in smtp.received) == [
        "[TST-001] test_thing[1]", "[TST-002] test_thing[2]"]
    # Not "sent": Telegram never got them. The fallback is named as such, and the run will say so.
    assert not result.all_channels_down and not result.ok and result.sent_keys() == set()
    assert all("refused, not delivered; only the fallback email has it" in line and "bot was blocked" in line
               for line in result.undelivered_lines()) and len(result.undelivered_lines()) == 2
    assert spool_leftovers(tmp_path) == []


def test_missing_token_env_is_a_permanent_failure_at_delivery(tmp_path, telegram, monkeypatch):
    monkeypatch.delenv("TEST_BOT_TOKEN")
    settings = settings_for(tmp_path, telegram=telegram_table(telegram))
    message = Message.from_alert(alert())
    result = deliver([message], settings)

    outcome = result.outcome(message.key, "telegram")
    assert outcome.status == FALLBACK and outcome.via == "file"
    assert "could not send: TEST_BOT_TOKEN is not set" in outcome.reason
    assert telegram.requests == [] and result.all_channels_down


def test_a_token_pasted_in_place_of_its_variable_name_is_not_repeated(tmp_path, telegram):
    settings = settings_for(tmp_path, telegram=telegram_table(telegram, bot_token_env=TOKEN))
    message = Message.from_alert(alert())
    outcome = deliver([message], settings).outcome(message.key, "telegram")
    assert outcome.status == FALLBACK and "not an environment variable name" in outcome.reason
    assert TOKEN not in outcome.reason and telegram.requests == []


def test_refused_with_no_fallback_is_spooled_for_its_own_channel(tmp_path, telegram):
    telegram.reply(status(401, "Unauthorized"))
    settings = settings_for(tmp_path, telegram=telegram_table(telegram), fallback=[])
    message = Message.from_alert(alert())
    outcome = deliver([message], settings).outcome(message.key, "telegram")
    assert outcome.status == SPOOLED and "HTTP 401" in outcome.reason

    # Once the operator has fixed the token, the next run's flush delivers it.
    result = flush_spool(settings)
    assert result.outcome(message.key, "telegram").status == DELIVERED
    assert len(telegram.requests) == 2 and spool_leftovers(tmp_path) == []


# -- all channels down, then the spool


def test_all_channels_down_spools_everything_then_a_flush_delivers_each_exactly_once(
        tmp_path, telegram, webhook, smtp, clock):
    telegram.default, webhook.default = status(500), status(503)
    closed = refused_port()
    down = settings_for(tmp_path, telegram=telegram_table(telegram), webhook=webhook_table(webhook),
                        email=email_table(smtp, tmp_path, port=closed.getsockname()[1]), fallback=["email", "file"])
    messages = [Message.from_alert(alert(1, "critical")), Message.from_alert(alert(2, "warning")),
                Message.from_alert(alert(3, "info"))]
    result = deliver(messages, down, sleep=clock.sleep, monotonic=clock.monotonic)
    closed.close()

    assert result.all_channels_down
    assert {(o.channel, o.status) for o in result.outcomes} == {
        ("file", DELIVERED), ("telegram", SPOOLED), ("email", SPOOLED), ("webhook", SPOOLED)}
    assert [len(spooled_files(tmp_path, name)) for name in ("telegram", "email", "webhook")] == [3, 2, 3]
    assert len(telegram.requests) == 3 and len(webhook.requests) == 3  # retries for the first alert only
    assert len((tmp_path / "alerts.jsonl").read_text().splitlines()) == 3

    telegram.default = webhook.default = ok()
    healthy = settings_for(tmp_path, telegram=telegram_table(telegram), webhook=webhook_table(webhook),
                           email=email_table(smtp, tmp_path), fallback=["email", "file"])
    telegram.requests.clear()
    webhook.requests.clear()
    flushed = flush_spool(healthy, sleep=clock.sleep, monotonic=clock.monotonic)

    assert [o.status for o in flushed.outcomes] == [DELIVERED] * 8 and not flushed.all_channels_down
    texts = sorted(r.json()["text"].split("\n")[0] for r in telegram.requests)
    assert texts == sorted(f"{TEMPLATES[m.severity]}{m.subject}" for m in messages)
    assert sorted(r.json()["key"] for r in webhook.requests) == sorted(m.key for m in messages)
    assert sorted(m.message["Message-ID"] for m in smtp.received) == sorted(
        f"<{m.key}@trading-maintenance>" for m in messages[:2])
    assert spool_leftovers(tmp_path) == []
    assert len((tmp_path / "alerts.jsonl").read_text().splitlines()) == 3  # the file got each once, at first

    again = flush_spool(healthy, sleep=clock.sleep, monotonic=clock.monotonic)
    assert again.outcomes == [] and len(telegram.requests) == 3 and len(webhook.requests) == 3
    assert len(smtp.received) == 2


def test_an_entry_left_in_flight_by_a_killed_run_is_sent_next_time_once(tmp_path, telegram):
    telegram.default = status(500)
    settings = settings_for(tmp_path, telegram=telegram_table(telegram), max_attempts=1)
    message = Message.from_alert(alert())
    deliver([message], settings)
    spool = Spool(tmp_path / "spool")
    (entry,) = spool.entries()
    spool.take(entry)  # a flush took it, then the run was killed before the outcome was known
    spool.put("telegram", message.key, entry.data)  # and a later run spooled the same message again
    assert sorted(p.name for p in (tmp_path / "spool" / "telegram").iterdir()) == [
        f"{message.key}.inflight", f"{message.key}.json"]

    telegram.default, telegram.requests[:] = ok(), []
    result = flush_spool(settings)
    assert [o.status for o in result.outcomes] == [DELIVERED] and len(telegram.requests) == 1
    assert spool_leftovers(tmp_path) == []


def test_a_fallback_during_a_flush_is_not_followed_by_a_second_copy(tmp_path, telegram, webhook, clock):
    telegram.default, webhook.default = status(403), status(503)
    settings = settings_for(tmp_path, telegram=telegram_table(telegram), webhook=webhook_table(webhook),
                            fallback=["webhook"], max_attempts=1)
    message = Message.from_alert(alert())
    first = deliver([message], settings, sleep=clock.sleep, monotonic=clock.monotonic)
    assert [first.outcome(message.key, name).status for name in ("telegram", "webhook")] == [SPOOLED, SPOOLED]

    webhook.default, webhook.requests[:] = ok(), []
    flushed = flush_spool(settings, sleep=clock.sleep, monotonic=clock.monotonic)
    # The telegram entry (still refused) falls back to the webhook; the webhook's own entry then
    # finds the message already there.
    assert flushed.outcome(message.key, "telegram").via == "webhook"
    assert flushed.outcome(message.key, "webhook").status == DELIVERED
    assert len(webhook.requests) == 1 and spool_leftovers(tmp_path) == []


def test_a_run_does_not_flush_while_another_run_is_flushing(tmp_path, telegram):
    telegram.default = status(500)
    settings = settings_for(tmp_path, telegram=telegram_table(telegram), max_attempts=1)
    deliver([alert()], settings)
    with Spool(tmp_path / "spool").lock():
        result = flush_spool(settings)
    assert result.outcomes == [] and "another run is flushing it" in result.notes[0]
    assert len(spooled_files(tmp_path, "telegram")) == 1


def test_a_corrupt_spool_entry_is_reported_and_set_aside(tmp_path):
    settings = settings_for(tmp_path)
    (tmp_path / "spool" / "telegram").mkdir(parents=True)
    (tmp_path / "spool" / "telegram" / "abc.json").write_text("{not json")
    result = flush_spool(settings)
    assert [(o.key, o.status) for o in result.outcomes] == [("abc", LOST)]
    assert (tmp_path / "spool" / "telegram" / "abc.corrupt").exists()
    assert flush_spool(settings).outcomes == []


def test_one_delivery_object_does_not_wait_twice_on_a_channel_found_down_while_flushing(tmp_path, telegram, clock):
    telegram.default = status(502)
    settings = settings_for(tmp_path, telegram=telegram_table(telegram), max_attempts=2)
    deliver([alert(1)], settings, sleep=clock.sleep, monotonic=clock.monotonic)
    telegram.requests.clear()

    run = Delivery(settings, sleep=clock.sleep, monotonic=clock.monotonic)
    result = run.flush_spool().merged(run.deliver([alert(2)]))
    assert len(telegram.requests) == 2  # the flush's two attempts; alert 2 is spooled straight away
    assert result.with_status(SPOOLED) and result.all_channels_down


# -- secrets


def test_redactor_masks_secrets_and_their_url_encoded_forms():
    redactor = Redactor([PASSWORD, "", TOKEN])
    text = f"a {PASSWORD} b CANARY%20pass%2Fword%2B%25 c CANARY+pass%2Fword%2B%25 d /bot{TOKEN}/x"
    assert redactor.text(text) == "a *** b *** c *** d /bot***/x"
    assert Redactor([]).text("nothing to hide") == "nothing to hide"


def test_redacting_filter_covers_args_and_tracebacks():
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "url %s", (f"/bot{TOKEN}/",), None)
    try:
        raise RuntimeError(f"failed at /bot{TOKEN}/sendMessage")
    except RuntimeError:
        import sys
        record.exc_info = sys.exc_info()
    RedactingFilter(Redactor([TOKEN])).filter(record)
    formatted = logging.Formatter().format(record)
    assert TOKEN not in formatted and "url /bot***/" in formatted and "failed at /bot***/sendMessage" in formatted


def test_secrets_never_reach_results_errors_spool_files_or_debug_logs(tmp_path, telegram, webhook, smtp, clock,
                                                                     caplog):
    # aiosmtpd logs the client's AUTH lines: that is the remote server's log, not this box's.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    closed = refused_port()
    wrong_password_server = SMTPServer(USER, "another password").start()
    try:
        # A server that echoes the request URL (with the token) in its error description.
        telegram.default = status(403, f"Forbidden: no such bot at /bot{TOKEN}/sendMessage")
        webhook.default = status(500)
        settings = settings_for(
            tmp_path, telegram=telegram_table(telegram), webhook=webhook_table(webhook),
            email=email_table(wrong_password_server, tmp_path), fallback=["webhook", "email"], max_attempts=2)
        unreachable = settings_for(tmp_path, telegram=telegram_table(
            telegram, api_base=f"http://127.0.0.1:{closed.getsockname()[1]}"), fallback=[], max_attempts=2)
        uninstall = install(Redactor(settings.secrets()))
        caplog.set_level(logging.DEBUG)
        try:
            results = [deliver([alert(1)], settings, sleep=clock.sleep, monotonic=clock.monotonic),
                       deliver([alert(2)], unreachable, sleep=clock.sleep, monotonic=clock.monotonic)]
            with pytest.raises((Transient, Permanent)) as raised:
                TelegramChannel(unreachable.telegram, Redactor(settings.secrets())).send(Message.from_alert(alert(3)))
            logging.getLogger("test").debug("direct: %s", f"/bot{TOKEN}/", exc_info=raised.value)
        finally:
            uninstall()
    finally:
        wrong_password_server.stop()
        closed.close()

    texts = ["\n".join(result.lines()) for result in results] + [str(raised.value), repr(raised.value)]
    texts += [p.read_text() for p in (tmp_path / "spool").rglob("*") if p.is_file()]
    texts.append(caplog.text)
    texts += [record.getMessage() for record in caplog.records]
    assert "/bot***/sendMessage" in caplog.text  # urllib3's DEBUG line with the URL was there, redacted
    assert "authentication refused: 535" in texts[0] and "cannot reach the Bot API" in texts[1]
    for text in texts:
        for secret in SECRETS:
            assert secret not in text
            assert secret.replace(" ", "%20") not in text
    assert {"telegram", "webhook", "email"} <= {p.parent.name for p in (tmp_path / "spool").rglob("*.json")}


def test_the_message_every_channel_sends_says_why_the_check_matters():
    alert = Alert(check_id="SVC-001", severity="critical", kind="problem", title="test_service_is_running[x]",
                  message="service x is inactive", why="a stopped service stops trading")
    text = Message.from_alert(alert).rendered()
    assert "why it matters: a stopped service stops trading" in text
    digest = Alert.digest([alert], "daily run")
    assert "Why it matters: a stopped service stops trading." in digest.message


def test_only_what_was_not_delivered_is_listed_as_not_delivered():
    """First contact, finding 15: one undelivered alert put "NOT DELIVERED:" before every outcome line."""
    from alerts.delivery import DeliveryOutcome, DeliveryResult

    result = DeliveryResult([DeliveryOutcome("k1", "file", DELIVERED), DeliveryOutcome("k1", "telegram", SPOOLED,
                                                                                       reason="HTTP 502")])
    assert result.undelivered_lines() == ["telegram k1: spooled (HTTP 502)"]
