"""A dead-man's switch: healthchecks.io's convention (URL/start, URL on success, URL/fail)."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def ping(url: str | None, suffix: str, timeout: float) -> None:
    """A heartbeat that cannot be sent must never break the run."""
    if not url:
        return
    import requests  # here: most runs of most boxes have no heartbeat to send

    try:
        requests.post(url.rstrip("/") + suffix, timeout=timeout)
    except requests.RequestException as error:
        log.warning("heartbeat%s not sent: %s", suffix, type(error).__name__)  # the URL is a secret
