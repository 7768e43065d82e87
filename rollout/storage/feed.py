"""The change channel, for readers that follow every write (SDKs, dashboards), and the two
channels some of them want besides: the controller's status words, and event-stream appends
(the notifier's wake-up beside the change channel)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from rollout.core.model import Status
from rollout.storage.codec import decode_status
from rollout.storage.errors import storage_call
from rollout.storage.keys import Keys


@dataclass(frozen=True)
class Change:
    key: str
    version: int
    flag: dict[str, Any] | None  # the whole new value; None when the flag was deleted


@dataclass(frozen=True)
class StatusChange:
    key: str
    status: Status | None


@dataclass(frozen=True)
class EventAppended:
    """An entry was appended to ``key``'s event stream (no flag write: nothing to apply)."""

    key: str


class ChangeFeed:
    """Writes on ``keys.changes``; with ``statuses``, the controller's words as well; with
    ``events``, the event-stream appends."""

    def __init__(
        self, client: Any, keys: Keys, *, statuses: bool = False, events: bool = False
    ) -> None:
        self._pubsub: Any = client.pubsub(ignore_subscribe_messages=True)
        self._channels = [
            keys.changes,
            *([keys.status_changes] if statuses else []),
            *([keys.event_appends] if events else []),
        ]
        self._status_channel = keys.status_changes
        self._events_channel = keys.event_appends

    @storage_call
    def subscribe(self) -> None:
        self._pubsub.subscribe(*self._channels)

    @storage_call
    def next_change(self, timeout: float) -> Change | StatusChange | EventAppended | None:
        """The next change, or None after ``timeout`` seconds; garbled messages are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            # Subscribe confirmations and garbled messages come back as None/skip; keep
            # reading until a real change or the deadline.
            message = self._pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
            if message is not None and message.get("type") == "message":
                try:
                    data = json.loads(message["data"])
                    if message.get("channel") == self._status_channel:
                        return StatusChange(str(data["key"]), decode_status(data["status"]))
                    if message.get("channel") == self._events_channel:
                        return EventAppended(str(data["key"]))
                    return Change(str(data["key"]), int(data["version"]), data.get("flag"))
                except (ValueError, KeyError, TypeError):
                    pass
            if time.monotonic() >= deadline:
                return None

    def close(self) -> None:
        try:
            self._pubsub.close()
        except Exception:  # closing a broken connection must not mask the original outage
            pass
