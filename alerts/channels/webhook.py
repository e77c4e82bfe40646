"""A webhook: the alert as JSON, POSTed to whatever the operator runs (chat bridge, pager, SIEM).

The body carries the message's stable `key`: delivery is at-least-once, so a receiver that
cares about duplicates drops a key it has seen.
"""

from __future__ import annotations

import requests

from alerts.channel import Permanent, Transient, channel
from alerts.message import Message
from configuration.alerts import MissingSecret, WebhookSettings
from core.redact import Redactor

RETRYABLE_4XX = (408, 429)  # "request timeout" and "too many requests" say: try again later


@channel("webhook")
class WebhookChannel:
    def __init__(self, settings: WebhookSettings, redactor: Redactor):
        self.settings = settings
        self.redactor = redactor

    def send(self, message: Message) -> None:
        headers = {}
        if self.settings.header_name:
            try:
                headers[self.settings.header_name] = self.settings.header_value()
            except MissingSecret as error:
                raise Permanent(f"could not send: {error}") from None
        payload = {"key": message.key, "severity": message.severity, "subject": message.subject,
                   "text": message.rendered(), "alert": message.alert.as_dict()}
        failure = None
        try:
            response = requests.post(self.settings.url.get_secret_value(), json=payload, headers=headers,
                                     timeout=self.settings.timeout_seconds, allow_redirects=False)
        except requests.Timeout:
            failure = f"no answer within {self.settings.timeout_seconds:g}s"
        except requests.RequestException as error:
            failure = f"cannot reach the webhook: {type(error).__name__}: {error}"
        if failure:
            raise Transient(self.redactor.text(failure))
        status = response.status_code
        said = self.redactor.text(f"HTTP {status} {response.reason or ''}".strip())
        if status >= 500 or status in RETRYABLE_4XX:
            raise Transient(said, retry_after=_seconds(response.headers.get("Retry-After")))
        if status >= 300:  # redirects are not followed: a moved hook is a configuration to fix
            raise Permanent(said)


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
