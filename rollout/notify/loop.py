"""``rollout notifier``: read the flags' audit and event streams, hand each destination its
events, and let each destination's worker deliver them.

``tick(now)`` is one pass over every flag (read, then every worker delivers what is due, one
after another) and is what tests drive. ``run()`` holds the notifier's leader lock, reads in
this thread and delivers in one thread per destination. It does not poll: it blocks on its
``StreamWatch`` (the change channel and the event-stream appends, through the one channel
follower) and reads only the flags named there, plus the flags whose queue a worker has just
emptied (more may have come meanwhile). Every flag is read at the watch's full loads (start,
reconnect, every ``NOTIFY_SAFETY_POLL`` seconds) and, while the watch is disconnected, on
every turn of ``lock_interval``. Built by ``rollout.wiring.build_notifier``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from functools import partial

from rollout.core.defaults import NOTIFY_BATCH, NOTIFY_RENEW
from rollout.core.destinations import Destination, resolve
from rollout.core.errors import StorageError, ValidationError
from rollout.core.outage import Outage
from rollout.notify.http import post
from rollout.notify.worker import DestinationWorker, Sender
from rollout.services.container import Lock
from rollout.services.events import EventService
from rollout.services.notify import NotifyService
from rollout.services.watch import StreamWatch

log = logging.getLogger("rollout.notifier")


class _Stop(threading.Event):
    """The notifier's stop flag: setting it also wakes the loop from its wait on the watch."""

    def __init__(self, wake: Callable[[], None]) -> None:
        super().__init__()
        self._wake = wake

    def set(self) -> None:
        super().set()
        self._wake()


class Notifier:
    def __init__(
        self,
        events: EventService,
        notify: NotifyService,
        lock: Lock,
        *,
        environ: Mapping[str, str],
        clock: Callable[[], float] = time.time,
        watch: StreamWatch | None = None,
        lock_interval: float = NOTIFY_RENEW,
        send: Sender = post,
        retry_for: float | None = None,
        only: Mapping[str, Destination] | None = None,
    ) -> None:
        self.events = events
        self.notify = notify
        self.lock = lock
        self.environ = environ
        self.clock = clock
        # None: no channel to wake on, so ``run`` reads every flag on every turn.
        self.watch = watch
        self.lock_interval = lock_interval
        self.send = send
        self.retry_for = retry_for
        self.only = only  # fixed destinations (the demo's), instead of those in Redis
        self.workers: dict[str, DestinationWorker] = {}
        self.stop: threading.Event = _Stop(watch.interrupt if watch is not None else lambda: None)
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
                drained=self._drained, **kwargs,
            )  # fmt: skip
            self.workers[name] = worker
            if self.threaded:
                worker.start(self.clock)

    # -- one pass ------------------------------------------------------------------------

    def read(self, keys: Collection[str] | None = None) -> None:
        """Fill every worker's empty queues of ``keys`` (None: of every flag) from the streams,
        one round trip per worker (per-key commands: each goes to its flag's node)."""
        if not self.workers:
            return
        flags = self.events.flags() if keys is None else sorted(keys)
        if not flags:
            return
        for worker in list(self.workers.values()):
            wanting = worker.wanting(partial(self.notify.cursors, worker.name), flags)
            if not wanting:
                continue
            for flag, items in self.events.read_many(wanting, NOTIFY_BATCH).items():
                worker.offer(flag, items)
                if len(items) >= NOTIFY_BATCH:  # maybe cut at a full batch: read on
                    self._drained(flag)

    def _drained(self, flag: str) -> None:
        """Read ``flag`` again: a worker emptied its queue (entries that came while it held
        anything were not read: a worker reads a flag only once its queue is empty), or a read
        of it may have stopped at a full batch."""
        if self.watch is not None:
            self.watch.touch(flag)

    def _wanted(self) -> Collection[str] | None:
        """The flags to read on this turn of ``run``: those the watch heard of (None: all)."""
        if self.watch is None:
            return None
        keys = self.watch.take()
        return None if not self.watch.connected else keys

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
        renew_at = time.monotonic()
        failed = False  # the last read failed
        if self.watch is not None:
            self.watch.start()
        try:
            while not self.stop.is_set():
                if time.monotonic() >= renew_at:  # renew the lock, re-read the destinations
                    renew_at = time.monotonic() + self.lock_interval
                    leading = self._renew(leading, outage)
                if leading and self._read_wanted(everything=failed):
                    failed = False
                elif leading:
                    failed = True  # read every flag at the next turn, not in a tight loop
                if leading and not failed and self.watch is not None:
                    self.watch.wait(max(0.0, renew_at - time.monotonic()))
                else:  # nothing to wake for: the next renewal
                    self.stop.wait(max(0.0, renew_at - time.monotonic()))
        finally:
            self._stop_workers()
            if self.watch is not None:
                self.watch.stop()
            if leading:
                try:
                    self.lock.release()
                except StorageError:
                    pass

    def _renew(self, leading: bool, outage: Outage) -> bool:
        """Take or keep the lock, and follow the destinations; whether this notifier leads."""
        try:
            now_leading = self.lock.acquire()
            if outage.succeeded():
                log.warning("Redis reachable again")
        except StorageError as error:
            if outage.failed():  # once per outage, not every turn
                log.error("Redis unreachable (%s); not notifying until it answers", error)
            now_leading = False
        if now_leading != leading:
            log.info("%s the notifier lock", "took" if now_leading else "lost")
            if not now_leading:
                self._stop_workers()
            elif self.watch is not None:
                self.watch.touch_all()  # a new leader reads every flag once
        if now_leading:
            try:
                self.refresh()
            except StorageError as error:
                log.error("read failed: %s", error)
        return now_leading

    def _read_wanted(self, *, everything: bool) -> bool:
        """Read what the watch asked for (every flag after a failed read); False on failure."""
        keys = self._wanted()
        if everything:
            keys = None  # what the failed read had taken is read with the rest
        elif keys is not None and not keys:
            return True
        try:
            self.read(keys)
        except StorageError as error:
            log.error("read failed: %s", error)
            return False
        return True

    def _stop_workers(self) -> None:
        workers, self.workers = list(self.workers.values()), {}
        for worker in workers:
            worker.stop.set()
            worker.wake.set()
        for worker in workers:
            worker.join(timeout=6.0)
