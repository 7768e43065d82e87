"""What operators ask of the system itself: is Redis there, is a controller leading, are SDKs
dropping outcomes. Read-only; the API's /readyz and /metrics come here, not to storage."""

from __future__ import annotations

from dataclasses import dataclass

from rollout.storage.counters import ControllerCounters
from rollout.storage.flags import FlagStore
from rollout.storage.leader import LeaderLock
from rollout.storage.metrics import MetricsStore


@dataclass(frozen=True)
class ControllerFigures:
    ticks: int
    advances: int
    holds: int
    kills: int
    leader: str | None  # who holds the lock now, if anyone


class HealthService:
    def __init__(
        self,
        store: FlagStore,
        metrics: MetricsStore,
        counters: ControllerCounters,
        leader: LeaderLock,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._counters = counters
        self._leader = leader

    def ping(self) -> bool:
        """True when Redis answers; raises StorageError when it does not."""
        return self._store.ping()

    def controller(self) -> ControllerFigures:
        counts = self._counters.read()
        return ControllerFigures(
            ticks=counts.get("ticks", 0),
            advances=counts.get("advances", 0),
            holds=counts.get("holds", 0),
            kills=counts.get("kills", 0),
            leader=self._leader.holder(),
        )

    def sdk_dropped(self) -> int:
        return self._metrics.sdk_dropped()

    def sdk_values_dropped(self) -> int:
        return self._metrics.sdk_values_dropped()
