"""Notification destinations and the notifier's bookkeeping, behind one service.

Destinations are written by ``apply`` only (through ``ApplyService``); the notifier reads them,
keeps a durable cursor per flag per destination and counts what it delivered, failed and
dropped, where every API worker's ``/metrics`` and ``rollout notify list`` can read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Protocol

from rollout.core.destinations import Destination
from rollout.core.errors import DestinationNotFound
from rollout.services.flags import FlagService

COUNTERS = ("delivered", "failed", "dropped")


class NotifyStorage(Protocol):
    def destinations(self) -> dict[str, Destination]: ...

    def save_destination(self, destination: Destination) -> None: ...

    def server_time_ms(self) -> int: ...

    def delete_destination(self, name: str) -> None: ...

    def cursors(self, destination: str) -> dict[str, str]: ...

    def save_cursor(self, destination: str, flag: str, position: str) -> None: ...

    def count(
        self, destination: str, counts: Mapping[str, int], values: Mapping[str, str]
    ) -> None: ...

    def stats(self, destination: str) -> dict[str, str]: ...


class NotifyService:
    def __init__(self, flags: FlagService, store: NotifyStorage) -> None:
        self.flags = flags
        self._store = store

    def destinations(self) -> list[Destination]:
        found = self._store.destinations()
        return [found[name] for name in sorted(found)]

    def get(self, name: str) -> Destination:
        found = self._store.destinations().get(name)
        if found is None:
            raise DestinationNotFound(name)
        return found

    def save(self, destination: Destination) -> Destination:
        """Create or update; a new destination starts now (it is sent no history). "Now" is
        Redis's clock, the one stream entry ids are made of."""
        current = self._store.destinations().get(destination.name)
        created = current.created_at if current is not None else self._store.server_time_ms()
        stored = replace(destination, created_at=created)
        self._store.save_destination(stored)
        return stored

    def server_time_ms(self) -> int:
        return self._store.server_time_ms()

    def delete(self, name: str) -> None:
        self._store.delete_destination(name)

    # -- the notifier's bookkeeping -----------------------------------------------------

    def cursors(self, name: str) -> dict[str, str]:
        return self._store.cursors(name)

    def save_cursor(self, name: str, flag: str, position: str) -> None:
        self._store.save_cursor(name, flag, position)

    def count(
        self, name: str, counts: Mapping[str, int], values: Mapping[str, str] | None = None
    ) -> None:
        self._store.count(name, counts, values or {})

    def stats(self, name: str) -> dict[str, int | str | None]:
        raw = self._store.stats(name)
        out: dict[str, int | str | None] = {c: int(raw.get(c, 0)) for c in COUNTERS}
        out["backlog"] = int(raw.get("backlog", 0))
        out["last_success"] = raw.get("last_success") or None
        out["last_error"] = raw.get("last_error") or None
        return out
