"""One channel follower for every reader that keeps flags in memory (the SDK, the API's cache)
or that must hear of every write (the notifier).

Subscribe, then load every flag: a change landing in between is then seen twice, never missed.
Follow the change channel, and load everything again every ``resync_interval`` seconds, so a
message lost in transit is healed within that time. When Redis goes away, log it once, back off
and start over, which loads in full again: Redis is the truth, and a flag gone from it is gone.

What to do with what arrives is the user's: callbacks receive the full load (flags and the ones
that could not be read), each change (the new value, or None when the flag is gone or its new
value cannot be read), the controller's status words and the event-stream appends when asked
for, and the moment the follow was lost. Older news than a user holds is for it to ignore
(``core.freshness``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from rollout.core.defaults import BACKOFF_MAX, BACKOFF_START, FOLLOW_POLL, RESYNC_INTERVAL
from rollout.core.errors import MalformedFlag, RolloutError
from rollout.core.model import Flag, Status
from rollout.core.outage import Outage
from rollout.core.schema import flag_from_dict
from rollout.storage.feed import Change, ChangeFeed, EventAppended
from rollout.storage.flags import FlagStore
from rollout.storage.keys import Keys
from rollout.storage.topology import refresh

OnLoad = Callable[[dict[str, Flag], list[MalformedFlag]], None]
OnChange = Callable[[str, int, Flag | None], object]  # what it returns is unused
OnStatus = Callable[[str, Status | None], None]
OnEvent = Callable[[str], None]  # the key of a flag whose event stream got an entry


class ChannelFollower:
    """Keeps its user current from one Redis client, on a daemon thread of its own.

    ``redis`` returns the client to use; it is called once per attempt, so a user may connect
    lazily (the SDK does, sharing that client with its recorder). ``monotonic`` times the
    resyncs: a test moves it instead of waiting ``resync_interval`` out.
    """

    def __init__(
        self,
        redis: Callable[[], Any],
        keys: Keys,
        *,
        on_load: OnLoad,
        on_change: OnChange,
        on_status: OnStatus | None = None,
        on_event: OnEvent | None = None,
        on_lost: Callable[[], None] | None = None,
        known: Callable[[], Mapping[str, Flag]] | None = None,
        resync_interval: float = RESYNC_INTERVAL,
        monotonic: Callable[[], float] = time.monotonic,
        log: logging.Logger,
        while_down: str,
        name: str,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._on_load = on_load
        self._on_change = on_change
        self._on_status = on_status
        self._on_event = on_event
        self._on_lost = on_lost
        self._known = known  # what the user holds: unchanged versions are not decoded again
        self.resync_interval = resync_interval
        self._monotonic = monotonic
        self._log = log
        self._while_down = while_down  # what the user does meanwhile, for the outage line
        self._name = name
        self.synced = threading.Event()  # set by the first full load, never cleared
        self.connected = False
        self._stop = threading.Event()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._outage = Outage()
        self._ready: tuple[FlagStore, ChangeFeed] | None = None  # opened by first_sync

    @property
    def started(self) -> bool:
        return self._thread is not None

    def first_sync(self) -> bool:
        """Subscribe and load once, now, on the caller's thread; False (logged) when Redis is
        away. The subscription is kept for ``start``, so the thread does not load again."""
        try:
            self._ready = self._open()
            return True
        except RolloutError as error:
            self._went_down(error)
            return False

    def start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                ready, self._ready = self._ready, None
                self._thread = threading.Thread(
                    target=self._run, args=(ready,), name=self._name, daemon=True
                )
                self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._ready is not None:  # synced once but never started
            self._ready[1].close()
            self._ready = None

    # -- one connection's life ---------------------------------------------------------

    def _open(self) -> tuple[FlagStore, ChangeFeed]:
        client = self._redis()
        store = FlagStore(client, self._keys)
        feed = ChangeFeed(
            client,
            self._keys,
            statuses=self._on_status is not None,
            events=self._on_event is not None,
        )
        try:
            feed.subscribe()
            self._load(store)
        except BaseException:
            feed.close()
            raise
        return store, feed

    def _load(self, store: FlagStore) -> None:
        flags, problems = store.load_all(known=self._known() if self._known else None)
        self._on_load(flags, problems)
        # The line comes before ``connected`` reads true: whoever sees it back sees it logged.
        if self._outage.succeeded():
            self._log.warning("Redis reachable again; flags resynced")
        self.synced.set()
        self.connected = True

    def _follow(self, store: FlagStore, feed: ChangeFeed) -> None:
        next_resync = self._monotonic() + self.resync_interval
        while not self._stop.is_set():
            wait = max(0.0, min(FOLLOW_POLL, next_resync - self._monotonic()))
            change = feed.next_change(timeout=wait)
            if isinstance(change, Change):
                self._on_change(change.key, change.version, self._decoded(change))
            elif isinstance(change, EventAppended):
                if self._on_event is not None:
                    self._on_event(change.key)
            elif change is not None and self._on_status is not None:
                self._on_status(change.key, change.status)
            if self._monotonic() >= next_resync:
                self._load(store)
                next_resync = self._monotonic() + self.resync_interval

    def _decoded(self, change: Change) -> Flag | None:
        if change.flag is None:
            return None
        try:
            return flag_from_dict({**change.flag, "version": change.version})
        except RolloutError as error:
            # As good as gone until a readable value comes: its default, or Redis's clear error.
            self._log.error("flag %r: unreadable change (%s); treated as absent", change.key, error)
            return None

    def _went_down(self, error: BaseException) -> None:
        if self._outage.failed():  # once per outage, not once per retry
            self._log.warning("Redis unreachable (%s); %s", error, self._while_down)
        # Flipped after the log line, so whoever sees "disconnected" also finds it logged.
        self.connected = False

    def _run(self, ready: tuple[FlagStore, ChangeFeed] | None) -> None:
        backoff = BACKOFF_START
        while not self._stop.is_set():
            feed = None
            try:
                store, feed = ready or self._open()
                ready = None
                backoff = BACKOFF_START
                self._follow(store, feed)
            except RolloutError as error:
                self._lost()
                self._went_down(error)
                self._forget_layout()
            except Exception:  # a bug here must not end the thread and freeze every flag
                self._log.exception("following the change channel failed; retrying")
                self._lost()
                self.connected = False
            finally:
                if feed is not None:
                    feed.close()
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, BACKOFF_MAX)

    def _forget_layout(self) -> None:
        """After a dead node or a failover, the next attempt asks where things are now: a
        Cluster's slot map (the channel's node may be gone), a Sentinel group's master."""
        try:
            refresh(self._redis())
        except Exception:  # not connected yet (the SDK connects lazily): nothing to forget
            pass

    def _lost(self) -> None:
        # Before "disconnected" shows: whoever sees it finds the user's reaction done too.
        if self._on_lost is not None:
            self._on_lost()
