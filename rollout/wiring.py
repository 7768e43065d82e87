"""The one place where objects are built and wired together."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rollout.services.apply import ApplyService
from rollout.services.flags import FlagService
from rollout.services.gates import GateService
from rollout.services.health import HealthService
from rollout.services.history import HistoryService
from rollout.services.reads import FlagReads
from rollout.services.snapshots import SnapshotService
from rollout.services.summaries import SummaryService
from rollout.services.trends import TrendService
from rollout.settings import Settings, load_settings
from rollout.storage.connection import connect
from rollout.storage.counters import ControllerCounters
from rollout.storage.feed import ChangeFeed
from rollout.storage.flags import FlagStore
from rollout.storage.history import HistoryStore
from rollout.storage.keys import Keys
from rollout.storage.leader import LeaderLock
from rollout.storage.metrics import MetricsStore
from rollout.storage.trends import TrendStore


@dataclass
class Services:
    settings: Settings
    redis: Any
    keys: Keys
    store: FlagStore
    flags: FlagService
    gates: GateService
    snapshots: SnapshotService
    apply: ApplyService
    health: HealthService
    reads: FlagReads
    history: HistoryService
    trends: TrendService
    summaries: SummaryService
    clock: Callable[[], float]


def build_services(
    settings: Settings | None = None,
    *,
    redis_client: Any = None,
    clock: Callable[[], float] = time.time,
    start_embedded: bool = True,
) -> Services:
    settings = settings or load_settings()
    client = redis_client
    if client is None:
        client = connect(
            settings.redis_url,
            settings.data_dir,
            start_embedded=start_embedded,
            socket_timeout=settings.socket_timeout,
        )
    keys = Keys(settings.key_prefix)
    store = FlagStore(client, keys)
    metrics = MetricsStore(client, keys, settings.metrics_retention, settings.history_retention)
    gates = GateService(metrics, clock)
    flags = FlagService(store, clock, gates)
    reads = FlagReads(store, lambda: ChangeFeed(client, keys, statuses=True))
    flags.listeners.append(reads.note)
    flags.status_listeners.append(reads.note_status)
    history_store = HistoryStore(client, keys, settings.history_retention)
    history = HistoryService(history_store, reads.get, clock, settings.metrics_retention)
    summaries = SummaryService(history_store, metrics)
    flags.listeners.append(summaries.note)  # after the commit; never makes a move wait
    # Health only asks who holds the leader lock; it never takes it, so the TTL is unused.
    health = HealthService(
        store, metrics, ControllerCounters(client, keys), LeaderLock(client, keys, 1.0)
    )
    return Services(
        settings=settings,
        redis=client,
        keys=keys,
        store=store,
        flags=flags,
        gates=gates,
        snapshots=SnapshotService(flags, summaries),
        apply=ApplyService(flags),
        health=health,
        reads=reads,
        history=history,
        trends=TrendService(TrendStore(client, keys), clock),
        summaries=summaries,
        clock=clock,
    )
