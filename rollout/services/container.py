"""What adapters receive: the services, built once by ``rollout.wiring``.

The API, the CLI and the controller get a ``Services`` and nothing below it: no Redis client,
no key names, no store, so none of them can write around the one writer. The controller's lock
and counters come through the narrow ``Lock`` and ``TickCounters`` interfaces of ``Leadership``,
for the same reason. ``close()`` gives back what the wiring took.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from rollout.services.apply import ApplyService
from rollout.services.events import EventService
from rollout.services.flags import Clock, FlagService
from rollout.services.gates import GateService
from rollout.services.health import HealthService
from rollout.services.history import HistoryService
from rollout.services.notify import NotifyService
from rollout.services.reads import FlagReads
from rollout.services.report import ReportService
from rollout.services.snapshots import SnapshotService
from rollout.services.summaries import SummaryService
from rollout.services.trends import TrendService
from rollout.services.triggers import TriggerService
from rollout.services.watch import StreamWatch
from rollout.settings import Settings


class Lock(Protocol):
    """One controller's hold on the leader lock (``storage.leader.LeaderLock``).

    ``acquire`` takes it or renews it; renew and release check the owner, so a holder whose
    lock expired can neither extend nor delete the lock its successor now holds.
    """

    owner: str
    ttl_ms: int
    token: int  # fencing token of the current leadership (0 while not leading)

    def acquire(self) -> bool: ...

    def release(self) -> bool: ...

    def holder(self) -> str | None: ...


class TickCounters(Protocol):
    """The controller's counters, kept where every API worker's /metrics can read them."""

    def add(self, counts: dict[str, int], *, heartbeat_ms: int) -> None: ...


@dataclass(frozen=True)
class Leadership:
    """What a controller, or a notifier, needs besides the services.

    ``new_lock`` makes a lock with an owner id of its own: two controllers built over the same
    services must contend for the lock, not share it.
    """

    new_lock: Callable[[], Lock]
    counters: TickCounters
    new_notifier_lock: Callable[[], Lock] | None = None  # the notifier's own leader lock
    # The notifier's wake-up (a channel follower of its own), given its safety poll (seconds).
    new_notifier_watch: Callable[[float], StreamWatch] | None = None


@dataclass
class Services:
    settings: Settings
    flags: FlagService
    gates: GateService
    snapshots: SnapshotService
    apply: ApplyService
    health: HealthService
    reads: FlagReads
    history: HistoryService
    summaries: SummaryService
    reports: ReportService
    trends: TrendService
    leadership: Leadership
    clock: Clock
    triggers: TriggerService
    events: EventService
    notify: NotifyService
    # Releases what the wiring opened (its connection pool); a client passed in by the caller
    # stays the caller's to close.
    on_close: Callable[[], None] = field(repr=False)

    def close(self) -> None:
        """Stop the read cache's thread and release the connections; safe to call twice."""
        self.summaries.drain()  # the stage summaries of this process's last moves land first
        self.reads.stop(timeout=5.0)  # gone before its pool closes, or it may dial a fresh one
        self.on_close()
