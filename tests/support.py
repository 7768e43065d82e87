"""Small shared test helpers: an injected clock and a bounded wait."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rollout.storage.keys import Keys


class FakeClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01) -> bool:
    """Poll ``condition`` until true or ``timeout``: for deadlines, never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def store_malformed(redis_client: Any, key: str, doc: str, *, version: int = 1) -> None:
    """A stored flag value no reader can decode, as a bug or a hand edit would leave one.

    Written under the default key prefix, the one the ``services`` fixtures use.
    """
    keys = Keys()
    redis_client.hset(keys.flag(key), mapping={"v": version, "d": doc})
    redis_client.sadd(keys.index, key)
