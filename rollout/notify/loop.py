"""``rollout notifier``: read every flag's audit and event streams, hand each destination its
events, and let each destination's worker deliver them.

``tick(now)`` is one pass (read, then every worker delivers what is due, one after another)
and is what tests drive; ``run()`` holds the notifier's leader lock, reads in this thread and
delivers in one thread per destination. Built by ``rollout.wiring.build_notifier``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from rollout.core.defaults import NOTIFY_BATCH, NOTIFY_INTERVAL
from rollout.core.destinations import Destination, resolve
from rollout.core.errors import StorageError, ValidationError
from rollout.core.outage import Outage
from rollout.notify.http import post
from rollout.notify.worker import DestinationWorker, Sender
from rollout.services.container import Lock
from rollout.services.events import EventService
from rollout.services.notify import NotifyService

log = logging.getLogger("rollout.notifier")


class Notifier:
    def __init__(
        self,
        events: EventService,
        notify: NotifyService,
        lock: Lock,
        *,
        environ: Mapping[str, str],
        clock: Callable[[], float] = time.time,
        interval: float = NOTIFY_INTERVAL,
        send: Sender = post,
        retry_for: float | None = None,
        only: Mapping[str, Destination] | None = None,
    ) -> None:
        self.events = events
        self.notify = notify
        self.lock = lock
        self.environ = environ
        self.clock = clock
        self.interval = interval
        self.send = send
        self.retry_for = retry_for
        self.only = only  # fixed destinations (the demo's), instead of those in Redis
        self.workers: dict[str, DestinationWorker] = {}
        self.stop = threading.Event()
        self.threaded = False
        self._unresolvable: set[str] = set()
        self.lag: list[float] = []  # delivery lags, seconds (kept for benches; bounded)

    def _record_lag(self, seconds: float) -> None:
        if len(self.lag) < 100_000:
            self.lag.append(seconds)

    # -- destinations --------------------------------------------------------------------

    def check(self) -> list[Destination]:
        """Every destination with its variables set, or one clear line for the first that is
        not (at start: ``rollout notifier`` refuses to run half-configured)."""
        destinations = list(self.only.values()) if self.only else self.notify.destinations()
        for destination in destinations:
            resolve(destination, self.environ)
        return destinations

    def refresh(self) -> None:
        """Follow apply: new destinations get a worker, removed ones lose theirs."""
        wanted = {
            d.name: d for d in (self.only.values() if self.only else self.notify.destinations())
        }
        for name in list(self.workers):
            if name not in wanted or wanted[name] != self.workers[name].destination:
                self.workers.pop(name).join(timeout=0)
        for name, destination in wanted.items():
            if name in self.workers:
                continue
            try:
                url, secret = resolve(destination, self.environ)
            except ValidationError as error:
                if name not in self._unresolvable:
                    self._unresolvable.add(name)
                    log.error("%s; not delivering to it", error)
                continue
            self._unresolvable.discard(name)
            kwargs = {} if self.retry_for is None else {"retry_for": self.retry_for}
            worker = DestinationWorker(
                destination, url, secret, self.notify, send=self.send, lag=self._record_lag,
                **kwargs,
            )  # fmt: skip
            self.workers[name] = worker
            if self.threaded:
                worker.start(self.clock)

    # -- one pass ------------------------------------------------------------------------

    def read(self) -> None:
        """Fill every worker's empty flag queues from the streams, one round trip each."""
        if not self.workers:
            return
        flags = self.events.flags()
        for worker in list(self.workers.values()):
            wanting = worker.wanting(self.notify.cursors(worker.name), flags)
            if not wanting:
                continue
            for flag, items in self.events.read_many(wanting, NOTIFY_BATCH).items():
                worker.offer(flag, items)

    def tick(self, now: float | None = None) -> int:
        """Read, then deliver what is due to every destination; how many were delivered."""
        now = self.clock() if now is None else now
        self.refresh()
        self.read()
        return sum(worker.pump(now) for worker in list(self.workers.values()))

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> None:
        self.threaded = True
        leading = False
        outage = Outage()
        try:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    now_leading = self.lock.acquire()
                    if outage.succeeded():
                        log.warning("Redis reachable again")
                except StorageError as error:
                    if outage.failed():  # once per outage, not every interval (0.2 s)
                        log.error("Redis unreachable (%s); not notifying until it answers", error)
                    now_leading = False
                if now_leading != leading:
                    log.info("%s the notifier lock", "took" if now_leading else "lost")
                    leading = now_leading
                    if not leading:
                        self._stop_workers()
                if leading:
                    try:
                        self.refresh()
                        self.read()
                    except StorageError as error:
                        log.error("read failed: %s", error)
                self.stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
        finally:
            self._stop_workers()
            if leading:
                try:
                    self.lock.release()
                except StorageError:
                    pass

    def _stop_workers(self) -> None:
        workers, self.workers = list(self.workers.values()), {}
        for worker in workers:
            worker.stop.set()
            worker.wake.set()
        for worker in workers:
            worker.join(timeout=6.0)
