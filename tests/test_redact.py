"""Secrets, wider (issue 17, item 10): besides the secrets the configuration knows, the usual shapes of one
are masked wherever report text is made and in the diagnostics bundle; a webhook's URL is a secret as a
whole but for its scheme and host. Ordinary text (an error code line, a URL's host, a count) is left alone.
"""

from __future__ import annotations

import io
import tarfile

import pytest

from alerts.message import Alert, Message
from configuration import load
from core.redact import MASK, Redactor, mask_shapes, url_secrets, url_shown
from remediations import bundle

HOOK = "https://hooks.slack.com/services/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4"
HOOK_TOKEN = "cAnArY0hook0token0XyZ1234"


@pytest.mark.parametrize("text, expected", [
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig-part_1", "Authorization: ***"),
    ("Proxy-Authorization: Basic dXNlcjpodW50ZXIy", "Proxy-Authorization: ***"),
    ('headers={"authorization": "Basic dXNlcjpodW50ZXIy", "Host": "api.exchange"}',
     'headers={"authorization": "***", "Host": "api.exchange"}'),
    ("retrying with Bearer 0a1b2c3d4e5f6a7b8c9d", "retrying with Bearer ***"),
    ("EXCHANGE_API_KEY=AKIA0123456789ABCDEF next", "EXCHANGE_API_KEY=*** next"),
    ("X-MBX-APIKEY: vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
     "X-MBX-APIKEY: ***"),
    ("api-key: abc123def456", "api-key: ***"),
    ("GET /api/v3/order?symbol=BTCUSDT&timestamp=1714560000&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71",
     "GET /api/v3/order?symbol=BTCUSDT&timestamp=1714560000&signature=***"),
    ('{"secret": "my exchange secret", "symbol": "BTCUSDT"}', '{"secret": "***", "symbol": "BTCUSDT"}'),
    ("DB_PASSWORD='hunter2 with spaces'", "DB_PASSWORD='***'"),
    ("password: hunter2", "password: ***"),
    ('{"signature": 1714560000123, "symbol": "BTCUSDT"}', '{"signature": ***, "symbol": "BTCUSDT"}'),
    ("ws.connect(token=abc123def456)", "ws.connect(token=***)"),
    ("auth_token=0123456789abcdef&chat=1", "auth_token=***&chat=1"),
    ("binance: invalid api key 7Hx0aB3cD4eF5gH6iJ7kL8 (code -2015)", "binance: invalid api key *** (code -2015)"),
    ("connecting to postgresql://postgres:hunter2@127.0.0.1/trading_agent",
     "connecting to postgresql://postgres:***@127.0.0.1/trading_agent"),
    ("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0A1B\n\nMIIEowIBAAKCAQEA\n"
     "  q0Jt2/vS8PaI+Zx\n-----END RSA PRIVATE KEY-----\n2024-05-01 12:00:00 INFO started",
     "-----BEGIN RSA PRIVATE KEY-----***-----END RSA PRIVATE KEY-----\n2024-05-01 12:00:00 INFO started"),
    ('{"key": "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjE\\n-----END OPENSSH PRIVATE KEY-----\\n"}',
     '{"key": "-----BEGIN OPENSSH PRIVATE KEY-----***-----END OPENSSH PRIVATE KEY-----\\n"}'),
])
def test_each_usual_shape_of_a_secret_is_masked(text, expected):
    assert mask_shapes(text) == expected
    assert Redactor([]).text(text) == expected, "the Redactor's second pass"


@pytest.mark.parametrize("text", [
    "2024-05-01 12:00:00 ERROR TE001 order rejected: insufficient balance (BTCUSDT)",
    "error_counts_by_code: TE001=12, NE003=2",
    "webhook https://hooks.slack.com/ answered HTTP 404 Not Found",
    "5 checks: 3 passed, 1 failed, 1 unknown; smart_passed=True",
    "the bearer of bad news; the api key was rejected; the token expired",
    "exchange-api-key last rotated 120 days ago (2024-01-01, attested by alice)",
    "password authentication failed for user \"postgres\"",
    "sha256 0f1e2d3c4b5a6978..., recorded 9a8b7c6d5e4f3a2b...",
    "/var/log/trading-agent/error-2024-05-01.log: 3 line(s)",
    "GET /api/config answered 200 without credentials: it serves anyone who can reach it",  # PEN-002's words
])
def test_ordinary_text_is_left_alone(text):
    assert Redactor([]).text(text) == text


def test_a_private_key_marker_planted_in_a_log_hides_no_line_after_it():
    """The agent user writes its logs: a BEGIN line must not mask the rest of them in the bundle."""
    log = "-----BEGIN PRIVATE KEY-----\n2024-05-01 12:00:01 WARNING withdrawal to 1BoatSLRHtKNngkdXEeobR76b53LETtpyT\n"
    assert "withdrawal to 1BoatSLRHtKNngkdXEeobR76b53LETtpyT" in mask_shapes(log)


# -- a webhook's URL: secret but for its scheme and host


def test_a_secret_url_is_shown_as_its_scheme_and_host():
    assert url_shown(HOOK) == "https://hooks.slack.com/…"
    assert url_shown("http://user:pass@127.0.0.1:8080/hook?token=x") == "http://127.0.0.1:8080/…"


def test_a_webhook_url_is_secret_in_its_path_and_shown_by_its_host_only(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(f'[alerts.webhook]\nurl = "{HOOK}"\n')
    settings = load(path)
    assert settings.alerts.webhook.url.get_secret_value() == HOOK
    shown = repr(settings) + str(settings) + repr(settings.alerts.webhook) + str(settings.alerts.webhook.url)
    assert HOOK_TOKEN not in shown and "T0A1B2C3D" not in shown
    assert "https://hooks.slack.com/…" in shown
    redactor = Redactor(settings.secrets())
    said = redactor.text(f"POST {HOOK} failed; HTTPSConnectionPool(host='hooks.slack.com', port=443): Max retries "
                         f"exceeded with url: {HOOK.split('.com')[1]} (Caused by ...); "
                         f'hooks.slack.com:443 "POST /services/T0A1B2C3D/B4E5F6G7H/{HOOK_TOKEN} HTTP/1.1" 404')
    assert HOOK_TOKEN not in said and "T0A1B2C3D" not in said
    assert said.startswith("POST https://hooks.slack.com/… failed;") and f"with url: {MASK} (Caused" in said


def test_a_hook_path_is_masked_where_it_is_a_path_of_its_own_not_inside_another():
    redactor = Redactor(url_secrets("http://127.0.0.1:8099/trading", path_is_secret=True))
    assert redactor.text("url: /trading (Caused by)") == f"url: {MASK} (Caused by)"
    assert redactor.text("/var/log/trading-agent/error.log") == "/var/log/trading-agent/error.log"


# -- where the masking is used


def test_an_alert_that_quotes_a_header_is_sent_masked():
    alert = Alert(check_id="ERR-005", severity="warning", kind="problem", title="test_no_new_error_types",
                  message="NE004 in error.log: request failed, Authorization: Bearer 0a1b2c3d4e5f6a7b8c9d")
    message = Message.from_alert(alert).redacted(Redactor([]))
    assert "0a1b2c3d4e5f6a7b8c9d" not in message.text + str(message.to_dict())


def test_the_bundle_masks_the_usual_shapes_and_the_configured_secrets_and_keeps_the_rest():
    known = "canary-db-password-0123"
    log = (f"2024-05-01 12:00:00 INFO connecting with DB_PASSWORD={known}\n"
           "2024-05-01 12:00:01 DEBUG Authorization: Bearer 0a1b2c3d4e5f6a7b8c9d\n"
           "2024-05-01 12:00:02 ERROR binance: invalid api key 7Hx0aB3cD4eF5gH6iJ7kL8\n"
           "2024-05-01 12:00:03 DEBUG GET /api/v3/account?timestamp=1&signature=c8db56825ae71d6d\n"
           "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg\n-----END EC PRIVATE KEY-----\n"
           "2024-05-01 12:00:04 ERROR TE001 order rejected\n")
    archive = bundle.archive({"logs/var/log/trading-agent/trading-agent.log": log}, Redactor([known]))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        text = tar.extractfile("diagnostics/logs/var/log/trading-agent/trading-agent.log").read().decode()
    for secret in (known, "0a1b2c3d4e5f6a7b8c9d", "7Hx0aB3cD4eF5gH6iJ7kL8", "c8db56825ae71d6d", "MHcCAQEEIBkg"):
        assert secret not in text, secret
    assert "2024-05-01 12:00:04 ERROR TE001 order rejected" in text
    stamps = [line[:19] for line in log.splitlines() if line.startswith("2024")]
    assert [line[:19] for line in text.splitlines() if line.startswith("2024")] == stamps, "a line was lost"
