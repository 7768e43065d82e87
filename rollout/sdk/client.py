"""The in-process SDK: answers from memory, follows Redis in the background, never raises.

``is_enabled`` is one call of a per-flag answer function held by the handle; a background
thread (``sdk.sync``) swaps those functions when a change arrives. Reads never touch the
network or take a lock, so Redis being slow or gone cannot slow the caller.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rollout.core.evaluation import Evaluation, Reason, evaluate
from rollout.core.model import KEY_PATTERN, Flag
from rollout.sdk.compiled import Check, compile_flag
from rollout.settings import Settings, load_settings

log = logging.getLogger("rollout.sdk")

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def read_overrides(environ: Mapping[str, str]) -> dict[str, bool]:
    """Variables named like a flag key with a boolean value: the operators' per-process lever."""
    overrides = {}
    for name, value in environ.items():
        if KEY_PATTERN.match(name) and not name.startswith("ROLLOUT_"):
            word = value.strip().lower()
            if word in _TRUE or word in _FALSE:
                overrides[name] = word in _TRUE
    return overrides


class FlagHandle:
    """``client.flag(KEY)``. Its ``is_enabled`` is swapped in place when the flag changes."""

    __slots__ = ("_client", "default", "is_enabled", "key")

    def __init__(self, client: RolloutClient, key: str, default: bool) -> None:
        self._client = client
        self.key = key
        self.default = default
        self.is_enabled: Check = client._compile(key, default)

    def evaluate(self, user: object) -> Evaluation:
        """The answer with its reason (slower than ``is_enabled``; for diagnostics)."""
        return self._client.evaluate(self.key, user, default=self.default)

    def __repr__(self) -> str:
        return f"FlagHandle({self.key!r}, default={self.default})"


class RolloutClient:
    def __init__(
        self,
        redis_url: str | None = None,
        *,
        settings: Settings | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        start: bool = True,
        **overrides: Any,
    ) -> None:
        self.settings = settings or load_settings(redis_url=redis_url, **overrides)
        self.clock = clock
        self._overrides = read_overrides(os.environ if environ is None else environ)
        self._flags: dict[str, Flag] = {}
        self._handles: dict[tuple[str, bool], FlagHandle] = {}
        # By default value, then key: client.is_enabled avoids building a tuple per call.
        self._by_default: dict[bool, dict[str, FlagHandle]] = {False: {}, True: {}}
        self._write_lock = threading.Lock()  # serialises the syncer's swaps, never readers
        from rollout.sdk.sync import Syncer

        self._syncer = Syncer(self)
        if start:
            self._syncer.start()

    # -- reading ------------------------------------------------------------------------

    def flag(self, key: str, default: bool = False) -> FlagHandle:
        handle = self._handles.get((key, default))
        if handle is None:
            with self._write_lock:
                handle = self._handles.get((key, default))
                if handle is None:
                    handle = FlagHandle(self, key, default)
                    self._handles[(key, default)] = handle
                    self._by_default[bool(default)][key] = handle
        return handle

    def is_enabled(self, key: str, user: object, default: bool = False) -> bool:
        try:
            return self._by_default[default][key].is_enabled(user)
        except KeyError:
            pass
        try:
            return self.flag(key, bool(default)).is_enabled(user)
        except Exception:
            return bool(default)

    def evaluate(self, key: str, user: object, default: bool = False) -> Evaluation:
        try:
            return evaluate(
                self._flags.get(key), str(user), override=self._overrides.get(key), default=default
            )
        except Exception:
            return Evaluation(default, Reason.UNKNOWN, None)

    def known_flags(self) -> dict[str, Flag]:
        return dict(self._flags)

    @property
    def connected(self) -> bool:
        return self._syncer.connected

    def wait_synced(self, timeout: float = 5.0) -> bool:
        """Block until the first sync from Redis (tests and scripts; never needed for reads)."""
        return self._syncer.synced.wait(timeout)

    # -- updating (background thread) ---------------------------------------------------

    def _compile(self, key: str, default: bool) -> Check:
        return compile_flag(self._flags.get(key), self._overrides.get(key), default)

    def _replace_all(self, flags: dict[str, Flag]) -> None:
        """A full resync: Redis is the truth, so a flag that is gone answers its default."""
        with self._write_lock:
            self._flags = dict(flags)
            for (key, default), handle in self._handles.items():
                handle.is_enabled = self._compile(key, default)

    def _apply(self, key: str, flag: Flag | None, version: int) -> bool:
        """One change from the channel; older news than what we hold is ignored."""
        with self._write_lock:
            held = self._flags.get(key)
            if held is not None and held.version >= version:
                return False
            flags = dict(self._flags)
            if flag is None:
                flags.pop(key, None)
            else:
                flags[key] = flag
            self._flags = flags
            for (handle_key, default), handle in self._handles.items():
                if handle_key == key:
                    handle.is_enabled = self._compile(key, default)
            return True

    # -- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        self._syncer.stop()

    def __enter__(self) -> RolloutClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def bootstrap_file(self) -> Path | None:
        return self.settings.bootstrap_file
