"""One webhook POST. What it reports never contains the URL: a webhook URL is a secret."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from rollout.core.defaults import NOTIFY_TIMEOUT
from rollout.core.events import Event, body_for, signature


@dataclass(frozen=True)
class Answer:
    ok: bool
    status: int | None  # the receiver's HTTP status; None when none came
    detail: str  # "HTTP 500", "connection refused", "timed out": never the URL
    body: str = ""


def headers_for(event: Event, body: bytes, secret: str | None, now: float) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "Rollout-Event-Id": event.id,
        "User-Agent": "rollout-notifier",
    }
    if secret is not None:
        headers["Rollout-Signature"] = signature(secret, int(now), body)
    return headers


def _describe(error: BaseException) -> str:
    reason = getattr(error, "reason", error)
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(reason, socket.gaierror):
        return "host not found"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return type(reason).__name__


def post(
    url: str,
    event: Event,
    fmt: str,
    secret: str | None,
    *,
    timeout: float = NOTIFY_TIMEOUT,
    now: float | None = None,
) -> Answer:
    body = body_for(event, fmt)
    headers = headers_for(event, body, secret, time.time() if now is None else now)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read(4096).decode("utf-8", "replace")
            return Answer(
                200 <= response.status < 300, response.status, f"HTTP {response.status}", text
            )
    except urllib.error.HTTPError as error:
        text = error.read(4096).decode("utf-8", "replace") if error.fp else ""
        return Answer(False, error.code, f"HTTP {error.code}", text)
    except (urllib.error.URLError, OSError, ValueError) as error:
        return Answer(False, None, _describe(error))
