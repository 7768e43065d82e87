"""Callbacks for whoever builds on the SDK (the OpenFeature provider): changes and outages.

They run on the follower's thread, so they must be short; one that raises is logged and the
others still run. Nothing is ever raised back into the follower.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger("rollout.sdk")

T = TypeVar("T")


class Listeners(Generic[T]):
    def __init__(self) -> None:
        self._callbacks: list[Callable[[T], None]] = []

    def add(self, callback: Callable[[T], None]) -> Callable[[], None]:
        """Register ``callback``; returns a function that removes it again."""
        self._callbacks.append(callback)

        def remove() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return remove

    def __bool__(self) -> bool:
        return bool(self._callbacks)

    def __call__(self, value: T) -> None:
        for callback in list(self._callbacks):
            try:
                callback(value)
            except Exception:
                log.exception("rollout SDK listener %r failed", callback)
