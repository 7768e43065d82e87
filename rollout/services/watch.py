"""Which flags' streams may hold something new: the notifier's wake-up, from the change channel.

Every flag write publishes on the change channel in the script that appends its audit entry,
and every event-stream append publishes the flag's key in the script that appends it, so a
message means "this flag's streams grew" by the time it arrives. The watch follows both through
the one channel follower (``storage.follower``) and remembers the keys it heard of until the
notifier takes them; it never reads a stream itself. Streams of different flags live in
different Cluster slots, so no single blocking ``XREAD`` could wait on all of them: waking on
the channel and then reading only the flags it named, one key per command, works on every
topology.

Each full load of the follower (the first, the one after every reconnect, and the periodic one
every ``safety_poll`` seconds) asks for every flag: whatever a lost message left unsaid is read
then. While the follower is disconnected, ``connected`` reads false and the notifier reads
every flag on each turn instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from rollout.core.defaults import NOTIFY_SAFETY_POLL
from rollout.core.errors import MalformedFlag
from rollout.core.model import Flag
from rollout.storage.follower import ChannelFollower
from rollout.storage.keys import Keys

log = logging.getLogger("rollout.notifier")


class StreamWatch:
    """Keys heard of since the last ``take``; ``wait`` blocks until there is one."""

    def __init__(
        self,
        redis: Any,
        keys: Keys,
        *,
        safety_poll: float = NOTIFY_SAFETY_POLL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pending: set[str] = set()
        self._everything = False
        self._stopping = False
        self._cond = threading.Condition()
        # The flags of the last load and the changes since: only so that the periodic load
        # fetches no value whose version it already saw (the notifier needs none of them).
        self._held: dict[str, Flag] = {}
        self.loads = 0  # full loads seen (each one asked for every flag)
        self._follower = ChannelFollower(
            lambda: redis,
            keys,
            on_load=self._loaded,
            on_change=self._changed,
            on_event=self.touch,
            known=lambda: self._held,
            resync_interval=safety_poll,
            monotonic=monotonic,
            log=log,
            while_down="reading every flag's streams each turn until it is back",
            name="rollout-notifier-watch",
        )

    # -- the follower's side -----------------------------------------------------------

    def _loaded(self, flags: dict[str, Flag], _problems: list[MalformedFlag]) -> None:
        self._held = dict(flags)
        self.loads += 1
        self.touch_all()

    def _changed(self, key: str, _version: int, flag: Flag | None) -> None:
        if flag is None:
            self._held.pop(key, None)
        else:
            self._held[key] = flag
        self.touch(key)

    # -- the notifier's side -----------------------------------------------------------

    def start(self) -> None:
        self._follower.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._follower.stop(timeout)
        self.interrupt()

    @property
    def connected(self) -> bool:
        return self._follower.connected

    def touch(self, key: str) -> None:
        """Ask for ``key``'s streams to be read (also the notifier's own: a drained queue)."""
        with self._cond:
            self._pending.add(key)
            self._cond.notify_all()

    def touch_all(self) -> None:
        with self._cond:
            self._everything = True
            self._cond.notify_all()

    def interrupt(self) -> None:
        """The notifier is stopping: every ``wait`` from now on returns at once."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def wait(self, timeout: float) -> bool:
        """Block until some flag was asked for, or ``timeout`` seconds; whether one was."""
        with self._cond:
            self._cond.wait_for(
                lambda: self._stopping or self._everything or bool(self._pending), timeout
            )
            return self._everything or bool(self._pending)

    def take(self) -> set[str] | None:
        """The keys asked for since the last take (None: every flag), and forget them."""
        with self._cond:
            everything, pending = self._everything, self._pending
            self._everything, self._pending = False, set()
        return None if everything else pending
