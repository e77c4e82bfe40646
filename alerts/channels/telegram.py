"""Telegram: the channel a human sees first, through the Bot API's sendMessage.

The bot token is part of the URL, so nothing built from the URL (requests' exception messages,
the response) leaves this module without passing through the Redactor.
"""

from __future__ import annotations

import requests

from alerts.channel import Permanent, Transient, channel
from alerts.message import Message
from configuration.alerts import MissingSecret, TelegramSettings
from core.redact import Redactor

TEXT_LIMIT = 4000  # Telegram refuses texts over 4096 characters with a 400; keep a margin


@channel("telegram")
class TelegramChannel:
    def __init__(self, settings: TelegramSettings, redactor: Redactor):
        self.settings = settings
        self.redactor = redactor

    def send(self, message: Message) -> None:
        try:
            token = self.settings.token()
        except MissingSecret as error:
            raise Permanent(f"could not send: {error}") from None
        text = message.rendered()
        if len(text) > TEXT_LIMIT:
            text = text[:TEXT_LIMIT - 1] + "…"
        url = f"{self.settings.api_base.rstrip('/')}/bot{token}/sendMessage"
        payload = {"chat_id": self.settings.chat_id, "text": text, "disable_web_page_preview": True}
        failure = None
        try:
            response = requests.post(url, json=payload, timeout=self.settings.timeout_seconds,
                                     allow_redirects=False)
        except requests.Timeout:
            failure = f"no answer within {self.settings.timeout_seconds:g}s"
        except requests.RequestException as error:
            failure = f"cannot reach the Bot API: {type(error).__name__}: {error}"
        if failure:  # raised outside the except block: the original exception (with the URL) is not chained
            raise Transient(self.redactor.text(failure))
        self._check(response)

    def _check(self, response: requests.Response) -> None:
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        status = response.status_code
        said = self.redactor.text(str(body.get("description") or response.reason or ""))[:200]
        if status == 429:
            raise Transient(f"rate limited (HTTP 429): {said}", retry_after=_retry_after(body, response))
        if status >= 500:
            raise Transient(f"HTTP {status}: {said}")
        if status >= 300 or body.get("ok") is False:
            raise Permanent(f"HTTP {status}: {said}")


def _retry_after(body: dict, response: requests.Response) -> float | None:
    """The Bot API says how long to wait in parameters.retry_after; the HTTP header is a fallback."""
    parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
    for value in (parameters.get("retry_after"), response.headers.get("Retry-After")):
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            continue
        if seconds >= 0:
            return seconds
    return None
