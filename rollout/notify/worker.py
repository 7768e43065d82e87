"""One destination's deliveries: a queue per flag, in order, retried with backoff for 24 h.

The head of a flag's queue is delivered before anything behind it; a failing head holds its
own flag only, and a destination's worker runs in a thread of its own (``Notifier.run``), so a
slow or dead receiver never delays another destination. The cursor of a flag moves only once
its event was delivered (or dropped after 24 h): a restart resends, it never skips.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from rollout.core.defaults import (
    NOTIFY_BACKOFF_MAX,
    NOTIFY_BACKOFF_START,
    NOTIFY_RETRY_FOR,
    NOTIFY_TIMEOUT,
)
from rollout.core.destinations import Destination
from rollout.core.errors import StorageError
from rollout.core.units import render_instant, to_ms
from rollout.notify.http import Answer, post
from rollout.services.events import Item, Position
from rollout.services.notify import NotifyService

log = logging.getLogger("rollout.notifier")

Sender = Callable[..., Answer]


@dataclass
class FlagQueue:
    items: deque[Item] = field(default_factory=deque)
    read_to: Position = field(default_factory=Position)  # the last position read
    attempts: int = 0
    first_failure: float | None = None
    next_at: float = 0.0


class DestinationWorker:
    def __init__(
        self,
        destination: Destination,
        url: str,
        secret: str | None,
        notify: NotifyService,
        *,
        send: Sender = post,
        timeout: float = NOTIFY_TIMEOUT,
        retry_for: float = NOTIFY_RETRY_FOR,
        lag: Callable[[float], None] | None = None,
        drained: Callable[[str], None] | None = None,
    ) -> None:
        self.destination = destination
        self.url = url  # never logged: a webhook URL is a secret
        self.secret = secret
        self.notify = notify
        self.send = send
        self.timeout = timeout
        self.retry_for = retry_for
        self.lag = lag  # told each delivery's lag (seconds from the entry to the 2xx)
        # Told a flag whose queue was just emptied: the reader skips a flag while its queue
        # holds anything, so what came meanwhile is read only when asked for again.
        self.drained = drained
        self.queues: dict[str, FlagQueue] = {}
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.destination.name

    # -- filling (the reader's side) ---------------------------------------------------

    def start_position(self, flag: str, saved: str | None) -> Position:
        if saved:
            return Position.decode(saved)
        # A destination is sent nothing older than itself: start just before its creation.
        floor = f"{max(self.destination.created_at - 1, 0)}-18446744073709551615"
        return Position(floor, floor)

    def wanting(
        self, cursors: Callable[[], dict[str, str]], flags: list[str]
    ) -> dict[str, Position]:
        """The flags whose queue is empty, with where to read them from; ``cursors`` (the
        durable ones, from Redis) is called only when a flag has no queue yet."""
        saved: dict[str, str] | None = None
        with self.lock:
            new = [flag for flag in flags if flag not in self.queues]
        if new:
            saved = cursors()
        with self.lock:
            out = {}
            for flag in flags:
                queue = self.queues.get(flag)
                if queue is None:
                    queue = self.queues[flag] = FlagQueue(
                        read_to=self.start_position(flag, (saved or {}).get(flag))
                    )
                if not queue.items:
                    out[flag] = queue.read_to
            return out

    def offer(self, flag: str, items: list[Item]) -> None:
        """Entries read after the flag's ``read_to``: the wanted ones are queued."""
        if not items:
            return
        wanted = [
            i
            for i in items
            if i.event is not None and self.destination.wants(i.event.type, i.event.flag)
        ]
        with self.lock:
            queue = self.queues[flag]
            queue.read_to = items[-1].after
            queue.items.extend(wanted)
            only_skips = not queue.items
        if only_skips:  # nothing to send: move the cursor past what was read, once
            self.notify.save_cursor(self.name, flag, items[-1].after.encode())
        if wanted:
            self.wake.set()

    def backlog(self) -> int:
        with self.lock:
            return sum(len(q.items) for q in self.queues.values())

    # -- delivering ----------------------------------------------------------------------

    def pump(self, now: float) -> int:
        """Deliver every due head, flag by flag, until each flag's queue is empty or its head
        failed; how many were delivered. The per-destination counters go to Redis once."""
        delivered = failed = dropped = 0
        values: dict[str, str] = {}
        for flag in list(self.queues):
            while not self.stop.is_set():
                with self.lock:
                    queue = self.queues[flag]
                    if not queue.items or queue.next_at > now:
                        break
                    item = queue.items[0]
                assert item.event is not None
                answer = self.send(
                    self.url, item.event, self.destination.format, self.secret,
                    timeout=self.timeout, now=now,
                )  # fmt: skip
                if answer.ok:
                    delivered += 1
                    values["last_success"] = render_instant(to_ms(now)) or ""
                    if self.lag is not None:
                        self.lag(now - item.stamp / 1000)
                    self._done(flag, queue, item)
                    continue
                failed += 1
                values["last_error"] = f"{render_instant(to_ms(now))} {answer.detail}"
                if queue.first_failure is None:
                    queue.first_failure = now
                    log.warning("%s: delivery of %s failed: %s; retrying",
                                self.name, item.event.id, answer.detail)  # fmt: skip
                if now - queue.first_failure >= self.retry_for:
                    dropped += 1
                    log.error("%s: dropped %s after %.0fs of failures (%s)",
                              self.name, item.event.id, now - queue.first_failure,
                              answer.detail)  # fmt: skip
                    self._done(flag, queue, item)
                    continue
                queue.attempts += 1
                delay = min(NOTIFY_BACKOFF_MAX, NOTIFY_BACKOFF_START * 2 ** (queue.attempts - 1))
                queue.next_at = now + delay * random.uniform(0.5, 1.0)
                break
        if delivered or failed or dropped or values:
            values["backlog"] = str(self.backlog())
            try:
                self.notify.count(
                    self.name,
                    {"delivered": delivered, "failed": failed, "dropped": dropped},
                    values,
                )
            except StorageError as error:
                log.warning("%s: could not record counters: %s", self.name, error)
        return delivered

    def _done(self, flag: str, queue: FlagQueue, item: Item) -> None:
        with self.lock:
            queue.items.popleft()
            queue.attempts, queue.first_failure, queue.next_at = 0, None, 0.0
            emptied = not queue.items
            position = queue.read_to if emptied else item.after
        self.notify.save_cursor(self.name, flag, position.encode())
        if emptied and self.drained is not None:
            self.drained(flag)

    def next_due(self) -> float | None:
        with self.lock:
            due = [q.next_at for q in self.queues.values() if q.items]
        return min(due) if due else None

    # -- the thread (run mode) -----------------------------------------------------------

    def run(self, clock: Callable[[], float]) -> None:
        while not self.stop.is_set():
            try:
                self.pump(clock())
            except StorageError as error:
                log.warning("%s: %s", self.name, error)
            due = self.next_due()
            wait = 1.0 if due is None else max(0.0, min(1.0, due - clock()))
            self.wake.wait(wait)
            self.wake.clear()

    def start(self, clock: Callable[[], float]) -> None:
        self.thread = threading.Thread(
            target=self.run, args=(clock,), name=f"notify-{self.name}", daemon=True
        )
        self.thread.start()

    def join(self, timeout: float | None = None) -> None:
        self.stop.set()
        self.wake.set()
        if self.thread is not None:
            self.thread.join(timeout)
