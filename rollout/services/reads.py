"""Flag reads for the admin API, from memory kept current by the change channel.

A GET of a flag is the API's hottest call, and a Redis round trip plus decoding is most of its
cost. Each API worker therefore keeps every flag in memory, exactly as the SDK does: a full
load, then every change and every controller status word from the channels, and a full reload
after any reconnect and every ``RESYNC_SECONDS``. Reads may trail a write made through another
worker by the channel's delay (about a millisecond); writes are unaffected (compare-and-set in
Redis), so a stale ETag can only ever earn a 412, never a lost update. Until the cache is
synced, and for any key it does not hold, reads go to Redis.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Protocol

from rollout.core.errors import RolloutError
from rollout.core.model import Flag, Status
from rollout.core.schema import flag_from_dict, validate_key
from rollout.storage.feed import Change, ChangeFeed, StatusChange
from rollout.storage.flags import FlagStore

log = logging.getLogger("rollout.reads")

RESYNC_SECONDS = 30.0
BACKOFF_MAX = 5.0


class FeedFactory(Protocol):
    def __call__(self) -> ChangeFeed: ...


class FlagReads:
    def __init__(self, store: FlagStore, feed: FeedFactory) -> None:
        self.store = store
        self._feed_factory = feed
        self._flags: dict[str, Flag] | None = None  # None: not synced, read from Redis
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._attempted = threading.Event()  # set once the first load has succeeded or failed
        self._outage_logged = False

    # -- reads ---------------------------------------------------------------------------

    def get(self, key: str) -> Flag:
        validate_key(key)
        self._ensure_started()
        flags = self._flags
        if flags is not None:
            found = flags.get(key)
            if found is not None:
                return found
        # Not synced, or not held: a flag created a moment ago elsewhere, a malformed one
        # (the store raises the clear error), or none at all (404).
        return self.store.get(key)

    def synced(self, timeout: float = 0.0) -> dict[str, Flag] | None:
        """Every flag as last synced, never read through to Redis; None before the first sync
        or during an outage. The dict is never changed in place: a reader may keep it.

        ``timeout`` bounds a wait for the first load of a freshly started cache, so the first
        request a worker serves need not be refused; later calls never wait."""
        self._ensure_started()
        if self._flags is None and timeout > 0:
            self._attempted.wait(timeout)
        return self._flags

    def note(self, key: str, flag: Flag | None) -> None:
        """A write this process just made: visible to its next read at once (read your writes
        within a worker; other workers hear it from the channel a millisecond later)."""
        with self._lock:
            flags = self._flags
            if flags is None:
                return
            held = flags.get(key)
            if flag is None:
                self._flags = {k: v for k, v in flags.items() if k != key}
            elif held is None or held.version < flag.version:
                self._flags = {**flags, key: flag}

    def note_status(self, key: str, status: Status) -> None:
        with self._lock:
            if self._flags is not None:
                self._flags = _applied(self._flags, StatusChange(key, status))

    # -- following the channels ----------------------------------------------------------

    def _ensure_started(self) -> None:
        # Started on first use, inside the serving process: a thread started before gunicorn
        # forks its workers would not exist in them.
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="rollout-api-reads", daemon=True
                    )
                    self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            feed = None
            try:
                feed = self._feed_factory()
                feed.subscribe()  # before the load: a change in between is seen, not missed
                self._reload()
                self._attempted.set()
                self._outage_logged = False
                backoff = 0.05
                self._follow(feed)
            except RolloutError as error:
                if not self._outage_logged:  # once per outage, not once per retry
                    self._outage_logged = True
                    log.warning("flag cache: %s; reading from Redis until it recovers", error)
            except Exception:
                log.exception("flag cache failed; reading from Redis until it recovers")
            finally:
                self._flags = None
                self._attempted.set()  # also when the channel failed before any load
                if feed is not None:
                    feed.close()
            self._stop.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    def _reload(self) -> None:
        flags, _problems = self.store.load_all()
        self._flags = flags

    def _follow(self, feed: ChangeFeed) -> None:
        next_reload = time.monotonic() + RESYNC_SECONDS
        while not self._stop.is_set():
            change = feed.next_change(timeout=0.5)
            if change is not None:
                with self._lock:
                    if self._flags is not None:
                        self._flags = _applied(self._flags, change)
            if time.monotonic() >= next_reload:
                self._reload()
                next_reload = time.monotonic() + RESYNC_SECONDS


def _applied(flags: dict[str, Flag], change: Change | StatusChange) -> dict[str, Flag]:
    """A new dict (readers never see one half-changed) with one change applied."""
    updated = dict(flags)
    held = flags.get(change.key)
    if isinstance(change, StatusChange):
        if held is not None:
            updated[change.key] = replace(held, status=change.status)
        return updated
    if held is not None and held.version >= change.version:
        return flags  # older news than what is held
    if change.flag is None:
        updated.pop(change.key, None)
        return updated
    try:
        fresh = flag_from_dict({**change.flag, "version": change.version})
    except RolloutError:
        updated.pop(change.key, None)  # unreadable: let reads go to Redis for the clear error
        return updated
    # The channel carries the value, not the controller's word: keep the word we hold.
    updated[change.key] = replace(fresh, status=held.status if held else None)
    return updated
