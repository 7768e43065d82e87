"""Flag reads for the admin API, from memory kept current by the change channel.

A GET of a flag is the API's hottest call, and a Redis round trip plus decoding is most of its
cost. Each API worker therefore keeps every flag in memory, exactly as the SDK does, through the
same follower (``storage.follower``): a full load, then every change and every controller status
word from the channels, and a full reload after any reconnect and every ``resync_interval``.
Reads may trail a write made through another worker by the channel's delay (about a
millisecond); writes are unaffected (compare-and-set in Redis), so a stale ETag can only ever
earn a 412, never a lost update. Until the cache is synced, while Redis is away, and for any
key it does not hold, reads go to Redis.

The flag list is decided here too: from memory or from Redis, and whether the last rendering of
it still stands (``rendered_list``), so no adapter needs to know how the memory is kept.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar, cast

from rollout.core.defaults import RESYNC_INTERVAL
from rollout.core.errors import MalformedFlag
from rollout.core.freshness import with_news
from rollout.core.model import Flag, Status
from rollout.core.schema import validate_key
from rollout.storage.flags import FlagStore
from rollout.storage.follower import ChannelFollower
from rollout.storage.keys import Keys

log = logging.getLogger("rollout.reads")

R = TypeVar("R")


class FlagReads:
    def __init__(
        self,
        store: FlagStore,
        redis: Any,
        keys: Keys,
        *,
        resync_interval: float = RESYNC_INTERVAL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._flags: dict[str, Flag] | None = None  # None: not synced, read from Redis
        self._problems: list[str] = []
        self._lock = threading.Lock()
        self._first_wait_over = False  # a worker's first requests may wait for its first load
        # The last rendered list: the held dict it was rendered from, the renderer, the result.
        self._listed: tuple[dict[str, Flag], object, object] | None = None
        self._follower = ChannelFollower(
            lambda: redis,
            keys,
            on_load=self._loaded,
            on_change=self._changed,
            on_status=self._status_changed,
            on_lost=self._dropped,
            resync_interval=resync_interval,
            monotonic=monotonic,
            log=log,
            while_down="flag cache: reading from Redis until it recovers",
            name="rollout-api-reads",
        )

    # -- reads ---------------------------------------------------------------------------

    def get(self, key: str) -> Flag:
        validate_key(key)
        if not self._follower.started:
            # Started on first use, inside the serving process: a thread started before
            # gunicorn forks its workers would not exist in them.
            self._follower.start()
        flags = self._flags
        if flags is not None:
            found = flags.get(key)
            if found is not None:
                return found
        # Not synced, or not held: a flag created a moment ago elsewhere, a malformed one
        # (the store raises the clear error), or none at all (404).
        return self._store.get(key)

    def synced(self, timeout: float = 0.0) -> dict[str, Flag] | None:
        """Every flag as last loaded and followed, never read through to Redis; None before
        the first load and while Redis is away. The dict is never changed in place: a reader
        may keep it.

        ``timeout`` bounds a wait for the first load of a cache that has just started (the
        cache starts with a worker's first request, which then need not be refused); once a
        wait is over, later calls never wait."""
        found = self.all()
        if found is None and timeout > 0 and not self._first_wait_over:
            self._follower.synced.wait(timeout)
            self._first_wait_over = True
            found = self.all()
        return None if found is None else found[0]

    def all(self) -> tuple[dict[str, Flag], list[str]] | None:
        """Every flag held, and the stored values the last full load could not read; None
        until synced. The dict is replaced, never changed, on every change: the same object
        means nothing changed (the list's ETag rests on that)."""
        if not self._follower.started:
            self._follower.start()
        flags = self._flags
        return None if flags is None else (flags, self._problems)

    def flags(self) -> list[Flag]:
        """Every readable flag: the held ones when synced, else from Redis."""
        held = self.all()
        if held is None:
            return self._from_redis()[0]
        return list(held[0].values())

    def rendered_list(self, render: Callable[[list[Flag], list[str]], R]) -> R:
        """``render(flags by key, problems)``, the last result reused while nothing changed.

        The held dict is replaced on every change (a status word included), so while it is the
        same object the list is the same: a dashboard polling every second costs a comparison,
        not a render of every flag. Not synced: read from Redis and rendered every time."""
        held = self.all()
        if held is None:
            return render(*self._from_redis())
        flags, problems = held
        listed = self._listed
        if listed is None or listed[0] is not flags or listed[1] is not render:
            listed = (flags, render, render([flags[k] for k in sorted(flags)], problems))
            self._listed = listed  # one assignment: a concurrent reader sees old or new
        return cast(R, listed[2])

    def _from_redis(self) -> tuple[list[Flag], list[str]]:
        flags, problems = self._store.load_all()
        return [flags[k] for k in sorted(flags)], [str(p) for p in problems]

    def start(self) -> None:
        """Start following now rather than at the first read."""
        self._follower.start()

    @property
    def connected(self) -> bool:
        """Is the cache following Redis? While not, every read goes to Redis."""
        return self._follower.connected

    def wait_synced(self, timeout: float = 5.0) -> bool:
        """Block until the first full load (tests and scripts; reads never need it)."""
        return self._follower.synced.wait(timeout)

    def stop(self, timeout: float = 0.0) -> None:
        """Tell the follower to stop; it ends within one channel poll. ``timeout``: how long to
        wait for that (closing the pool under a follower mid-resync would let it reconnect)."""
        self._follower.stop(timeout=timeout)

    # -- this worker's own writes --------------------------------------------------------

    def after_write(self, key: str, flag: Flag | None) -> None:
        """A write this process just made: visible to its next read at once (read your writes
        within a worker; other workers hear it from the channel a millisecond later)."""
        with self._lock:
            flags = self._flags
            if flags is None:
                return
            if flag is None:
                self._flags = {k: v for k, v in flags.items() if k != key}
            else:
                self._take(with_news(flags, key, flag.version, flag))

    def after_status(self, key: str, status: Status) -> None:
        self._status_changed(key, status)

    # -- the follower's callbacks --------------------------------------------------------

    def _loaded(self, flags: dict[str, Flag], problems: list[MalformedFlag]) -> None:
        # Malformed flags are left out: a read of one goes to Redis for its clear error.
        with self._lock:
            self._problems = [str(p) for p in problems]
            self._flags = flags

    def _changed(self, key: str, version: int, flag: Flag | None) -> None:
        with self._lock:
            flags = self._flags
            if flags is None:
                return
            held = flags.get(key)
            if flag is not None and held is not None:
                # The channel carries the value, not the controller's word: keep the word held.
                flag = replace(flag, status=held.status)
            self._take(with_news(flags, key, version, flag))

    def _take(self, updated: dict[str, Flag] | None) -> None:
        if updated is not None:  # None: older news than the flag held
            self._flags = updated

    def _status_changed(self, key: str, status: Status | None) -> None:
        with self._lock:
            flags = self._flags
            held = None if flags is None else flags.get(key)
            if flags is not None and held is not None:
                self._flags = {**flags, key: replace(held, status=status)}

    def _dropped(self) -> None:
        with self._lock:
            self._flags = None
