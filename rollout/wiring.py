"""The composition root: the one place where storage objects are built and wired into services.

Entry points (the CLI, ``rollout.wsgi`` for gunicorn, tests, benches) call these functions;
the adapters below them (``api/``, ``controller/``) receive a ``services.container.Services``
and never import this module, so nothing but this file knows how the parts fit together.
``Services`` is imported from ``services/container.py`` by everyone; this module does not
re-export it (it names it only as ``container.Services``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from rollout.controller.loop import Controller
from rollout.core.defaults import NOTIFY_RENEW, NOTIFY_SAFETY_POLL
from rollout.core.destinations import Destination
from rollout.core.errors import StorageError, ValidationError
from rollout.notify.http import post
from rollout.notify.loop import Notifier
from rollout.notify.worker import Sender
from rollout.services import container  # the module: Services is not importable from here
from rollout.services.apply import ApplyService
from rollout.services.container import Leadership
from rollout.services.events import EventService
from rollout.services.flags import FlagService
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
from rollout.settings import Settings, load_settings
from rollout.storage.connection import client_for_url, masked, resolve_url
from rollout.storage.counters import ControllerCounters
from rollout.storage.events import EventStore
from rollout.storage.flags import FlagStore
from rollout.storage.history import HistoryStore
from rollout.storage.keys import Keys
from rollout.storage.leader import LeaderLock
from rollout.storage.metrics import MetricsStore
from rollout.storage.migrate import migrate
from rollout.storage.notify import NotifyStore
from rollout.storage.snapshots import SnapshotStore
from rollout.storage.topology import Replication
from rollout.storage.trends import TrendStore
from rollout.storage.triggers import TriggerStore

__all__ = [
    "build_controller",
    "build_notifier",
    "build_services",
    "check_reachable",
    "public_url",
    "server_url",
]


def server_url(settings: Settings, *, start_embedded: bool = True) -> str:
    """The URL of the Redis that ``settings`` name: ``redis_url``, else the embedded server's.

    For processes that hand the URL on (serve's children, the demo's SDK clients), so every one
    of them reaches the very same server.
    """
    return resolve_url(settings.redis_url, settings.data_dir, start_embedded=start_embedded)


def check_reachable(settings: Settings, url: str) -> None:
    """One clear line at start (StorageError) when ``url`` leads nowhere usable: nobody there,
    a Sentinel that knows no such service, a seed that is not a cluster node."""
    client = client_for_url(
        url, socket_timeout=settings.socket_timeout, ca_file=settings.redis_ca_file
    )
    try:
        FlagStore(client, Keys(settings.key_prefix)).ping()
    finally:
        client.close()


def public_url(url: str | None) -> str:
    """``url`` as a banner or a log may show it: passwords masked, ``embedded`` when unset."""
    return masked(url)


def build_services(
    settings: Settings | None = None,
    *,
    redis_client: Any = None,
    clock: Callable[[], float] = time.time,
    start_embedded: bool = True,
) -> container.Services:
    """Every service over one Redis client: ``redis_client`` (the caller's), else a new one.

    ``Services.close()`` closes the client only when it was made here.
    """
    settings = settings or load_settings()
    owned = redis_client is None
    client = redis_client
    if owned:
        url = server_url(settings, start_embedded=start_embedded)
        client = client_for_url(
            url, socket_timeout=settings.socket_timeout, ca_file=settings.redis_ca_file
        )
    keys = Keys(settings.key_prefix)
    try:
        migrate(client, keys)  # the key layout of an older install, moved once (idempotent)
    except StorageError:
        pass  # Redis is down: the services answer 503 meanwhile; the next start migrates
    replication = Replication(settings.write_replicas, settings.write_replicas_timeout)
    store = FlagStore(client, keys, replication)
    metrics = MetricsStore(client, keys, settings.metrics_retention, settings.history_retention)
    gates = GateService(metrics, clock)
    flags = FlagService(store, clock, gates)
    reads = FlagReads(store, client, keys, resync_interval=settings.resync_interval)
    flags.listeners.append(reads.after_write)
    flags.status_listeners.append(reads.after_status)
    history_store = HistoryStore(client, keys, settings.history_retention)
    history = HistoryService(history_store, reads.get, clock, settings.metrics_retention)
    summaries = SummaryService(history_store, metrics)
    flags.listeners.append(summaries.after_write)  # after the commit; never makes a move wait
    counters = ControllerCounters(client, keys)
    leadership = Leadership(
        new_lock=lambda: LeaderLock(client, keys, settings.leader_ttl),
        counters=counters,
        new_notifier_lock=lambda: LeaderLock(
            client, keys, settings.leader_ttl, key=keys.notifier_leader
        ),
        new_notifier_watch=lambda safety_poll: StreamWatch(client, keys, safety_poll=safety_poll),
    )
    # Health only asks who holds the leader lock; it never takes it, so its TTL is unused.
    health = HealthService(store, metrics, counters, LeaderLock(client, keys, 1.0))
    triggers = TriggerService(flags, TriggerStore(client, keys), settings.public_url)
    notify = NotifyService(flags, NotifyStore(client, keys))
    return container.Services(
        settings=settings,
        flags=flags,
        gates=gates,
        snapshots=SnapshotService(
            flags, SnapshotStore(client, keys), summaries, triggers=triggers, notify=notify
        ),
        apply=ApplyService(flags, notify),
        health=health,
        reads=reads,
        history=history,
        trends=TrendService(TrendStore(client, keys), reads.flags, clock),
        summaries=summaries,
        reports=ReportService(flags, gates, summaries, history),
        leadership=leadership,
        clock=clock,
        triggers=triggers,
        events=EventService(EventStore(client, keys), settings.public_url),
        notify=notify,
        on_close=client.close if owned else lambda: None,
    )


def build_controller(
    services: container.Services,
    *,
    interval: float | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> Controller:
    """A controller over ``services``, with a leader lock of its own.

    ``monotonic`` times the lock's renewals (tests inject one to make a long tick).
    """
    settings = services.settings
    interval = interval if interval is not None else settings.controller_interval
    if interval * 2 > settings.leader_ttl:
        # A lock that expires between two ticks would let a second controller act too.
        raise ValidationError(
            f"the controller interval ({interval:g}s) must be at most half of "
            f"ROLLOUT_LEADER_TTL ({settings.leader_ttl:g}s)",
            "interval",
        )
    return Controller(
        services.flags,
        services.gates,
        services.leadership.new_lock(),
        services.leadership.counters,
        clock=services.clock,
        monotonic=monotonic,
        interval=interval,
        watch_period=settings.watch_period,
        events=services.events,
    )


def build_notifier(
    services: container.Services,
    *,
    environ: Mapping[str, str] | None = None,
    lock_interval: float | None = None,
    safety_poll: float = NOTIFY_SAFETY_POLL,
    only: Mapping[str, Destination] | None = None,
    send: Sender | None = None,
    retry_for: float | None = None,
) -> Notifier:
    """A notifier over ``services`` with a leader lock and a channel follower of its own; URLs
    and secrets come from ``environ`` (default: this process's environment). ``only``: fixed
    destinations (the demo's) instead of those ``apply`` stored; ``send``, ``retry_for`` and
    ``safety_poll`` for tests. The lock is renewed every ``lock_interval`` seconds (default
    ``NOTIFY_RENEW``, at most a third of ``ROLLOUT_LEADER_TTL``)."""
    new_lock = services.leadership.new_notifier_lock
    new_watch = services.leadership.new_notifier_watch
    assert new_lock is not None and new_watch is not None, "build_services provides both"
    if lock_interval is None:
        lock_interval = min(NOTIFY_RENEW, services.settings.leader_ttl / 3)
    return Notifier(
        services.events,
        services.notify,
        new_lock(),
        environ=os.environ if environ is None else environ,
        clock=services.clock,
        watch=new_watch(safety_poll),
        lock_interval=lock_interval,
        send=post if send is None else send,
        retry_for=retry_for,
        only=only,
    )
