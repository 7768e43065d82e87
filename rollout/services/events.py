"""Events: the controller's status events appended to the flag's event stream, and the merged,
ordered read of a flag's audit and event streams that notifiers deliver from.

``note`` is the controller's one call per decision: it appends what ``core.events`` says to
(once per stage for holds and approvals; the readings of a kill just before the kill lands),
so those events are as durable as the audit. ``read`` gives each stream entry in one order per
flag, each with the position a notifier's cursor moves to once it is handled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from rollout.core.decide import Decision
from rollout.core.events import (
    READINGS,
    Event,
    event_from_audit,
    event_from_stream,
    status_entries,
)
from rollout.core.model import Flag

Entry = tuple[str, dict[str, str]]
START = "0-0"


class EventStorage(Protocol):
    def append(self, key: str, mark: str | None, fields: Mapping[str, str]) -> str | None: ...

    def read(
        self, key: str, audit_after: str, events_after: str, count: int
    ) -> tuple[list[Entry], list[Entry]]: ...

    def recent_events(self, key: str, before: str, count: int = 50) -> list[Entry]: ...

    def read_many(
        self, requests: list[tuple[str, str, str]], count: int
    ) -> list[tuple[list[Entry], list[Entry]]]: ...

    def streamed_flags(self) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class Position:
    """How far a reader got in one flag's two streams (last entry handled, each)."""

    audit: str = START
    events: str = START

    def encode(self) -> str:
        return f"{self.audit}|{self.events}"

    @staticmethod
    def decode(text: str | None) -> Position:
        if not text or "|" not in text:
            return Position()
        audit, events = text.split("|", 1)
        return Position(audit or START, events or START)


@dataclass(frozen=True, slots=True)
class Item:
    """One stream entry in order: the event it is (None: nothing to tell) and the position
    after it."""

    event: Event | None
    after: Position
    stamp: int  # the entry's time (epoch ms), for delivery lag


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class EventService:
    def __init__(self, store: EventStorage, public_url: str | None = None) -> None:
        self._store = store
        self.public_url = public_url
        # Marks this process already used: a hold that lasts an hour costs one script call,
        # not one a tick. Redis keeps the marks that count (across restarts and leaders).
        self._used: set[tuple[str, str]] = set()

    def note(self, flag: Flag, decision: Decision, at_ms: int, actor: str = "controller") -> int:
        """Append the events ``decision`` makes for ``flag``; how many were new."""
        appended = 0
        for entry in status_entries(flag, decision, at_ms, actor):
            if entry.mark is not None and (flag.key, entry.mark) in self._used:
                continue
            if self._store.append(flag.key, entry.mark, entry.fields) is not None:
                appended += 1
            if entry.mark is not None:
                if len(self._used) >= 100_000:
                    self._used.clear()
                self._used.add((flag.key, entry.mark))
        return appended

    def flags(self) -> list[str]:
        return self._store.streamed_flags()

    def read(self, key: str, since: Position, count: int) -> list[Item]:
        """Entries after ``since`` of both streams, merged in one order (audit first on a
        tie); cut where a full batch ends, so nothing later is handed out before it."""
        audit, events = self._store.read(key, since.audit, since.events, count)
        return self._merge(key, since, audit, events, count)

    def read_many(self, since: Mapping[str, Position], count: int) -> dict[str, list[Item]]:
        """``read`` for every flag in ``since``, in one round trip."""
        keys = sorted(since)
        replies = self._store.read_many([(k, since[k].audit, since[k].events) for k in keys], count)
        return {
            k: self._merge(k, since[k], audit, events, count)
            for k, (audit, events) in zip(keys, replies, strict=True)
        }

    def _merge(
        self, key: str, since: Position, audit: list[Entry], events: list[Entry], count: int
    ) -> list[Item]:
        tagged = [(_order(i), 0, i, f) for i, f in audit] + [
            (_order(i), 1, i, f) for i, f in events
        ]
        tagged.sort(key=lambda t: (t[0], t[1]))
        limits = [_order(batch[-1][0]) for batch in (audit, events) if len(batch) >= count]
        limit = min(limits) if limits else None
        items: list[Item] = []
        position = since
        for order, source, entry_id, fields in tagged:
            if limit is not None and order > limit:
                break
            if source == 0:
                position = Position(entry_id, position.events)
                event = self._audit_event(key, entry_id, fields)
            else:
                position = Position(position.audit, entry_id)
                event = event_from_stream(entry_id, fields, public_url=self.public_url)
            items.append(Item(event, position, order[0]))
        return items

    def _audit_event(self, key: str, entry_id: str, fields: Mapping[str, str]) -> Event | None:
        readings: list[Any] = []
        if fields.get("action") == "kill" and fields.get("actor") == "controller":
            readings = self._kill_readings(key, entry_id, fields)
        return event_from_audit(entry_id, fields, public_url=self.public_url, readings=readings)

    def _kill_readings(self, key: str, entry_id: str, fields: Mapping[str, str]) -> list[Any]:
        """The readings the controller appended just before this kill, for the judged version."""
        try:
            version = str(json.loads(fields.get("before") or "{}").get("version"))
        except (ValueError, AttributeError):
            return []
        for _id, entry in self._store.recent_events(key, entry_id):
            if entry.get("type") == READINGS and entry.get("version") == version:
                try:
                    found = json.loads(entry.get("readings") or "[]")
                except ValueError:
                    return []
                return list(found) if isinstance(found, list) else []
        return []
