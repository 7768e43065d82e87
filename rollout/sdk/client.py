"""The in-process SDK: answers from memory, follows Redis in the background, never raises.

``is_enabled`` is one call of a per-flag answer function held by the handle; the flag table
(``sdk.table``) swaps those functions when the follower (``sdk.sync``) hears of a change, and
the recorder (``sdk.recorder``) sends what they counted. Reads never touch the network or take
a lock, so Redis being slow or gone cannot slow the caller. The client sits on top: it owns the
one Redis client (one connection pool; the channel keeps its own socket) that the follower and
the recorder share, and nothing below imports it.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from rollout.core.evaluation import Evaluation, Reason, evaluate
from rollout.core.model import KEY_PATTERN, Flag
from rollout.sdk.compiled import Check, Compiled
from rollout.sdk.recorder import Recorder, Track, resident_mb
from rollout.sdk.sync import FlagSync
from rollout.sdk.table import FlagTable
from rollout.sdk.values import ValueSink
from rollout.settings import Settings, load_settings
from rollout.storage.connection import connect
from rollout.storage.keys import Keys
from rollout.storage.metrics import MetricsStore

log = logging.getLogger("rollout.sdk")

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def read_overrides(environ: Mapping[str, str]) -> dict[str, bool]:
    """Variables named like a flag key with a boolean value: the operators' per-process lever."""
    overrides = {}
    for name, value in environ.items():
        if KEY_PATTERN.fullmatch(name) and not name.startswith("ROLLOUT_"):
            word = value.strip().lower()
            if word in _TRUE or word in _FALSE:
                overrides[name] = word in _TRUE
    return overrides


def _as_bool(value: object) -> bool:
    """A caller's default as a real bool; one that cannot say (bool() raises) means off."""
    try:
        return bool(value)
    except Exception:
        return False


def _after_fork(ref: weakref.ref[RolloutClient]) -> None:
    """A forked child's copy of a client: locks that a parent's thread may have held are new,
    and the recorder reports as the child (threads do not survive a fork: build the client
    after it, see the README)."""
    client = ref()
    if client is not None:
        client.table.after_fork()
        client._redis.after_fork()
        client._recorder.after_fork()


class _SharedRedis:
    """One redis-py client for the follower and the recorder, made when Redis is first reached.

    Made lazily because the SDK never starts a server: without a URL it finds the embedded one,
    which may come up after the application did. Once made it is kept; its pool reconnects.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Any = None
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = connect(
                        self._settings.redis_url,
                        self._settings.data_dir,
                        start_embedded=False,
                        socket_timeout=self._settings.socket_timeout,
                        ca_file=self._settings.redis_ca_file,
                    )
                client = self._client
        return client

    def after_fork(self) -> None:
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # closing a broken connection must not mask anything else
                pass


class Outcomes(Protocol):
    """What a handle records into: the client's ``Recorder``, handed over by the client, so a
    handle needs nothing else of the client but its public ``evaluate``."""

    values: ValueSink

    def record(
        self,
        compiled: Compiled,
        user: object,
        ok: bool,
        duration_ms: float | None,
        error_type: str | None,
        attributes: object = None,
    ) -> None: ...


class FlagHandle:
    """``client.flag(KEY)``. Its ``is_enabled`` is swapped in place when the flag changes."""

    __slots__ = ("_client", "_record", "_values", "compiled", "default", "is_enabled", "key")

    def __init__(
        self,
        client: RolloutClient,
        key: str,
        default: bool,
        compiled: Compiled,
        outcomes: Outcomes,
    ) -> None:
        self._client = client
        self._record = outcomes.record
        self._values = outcomes.values
        self.key = key
        self.default = default
        self.swap(compiled)

    def swap(self, compiled: Compiled) -> None:
        """The flag table's lever: answer with ``compiled`` from the next call on."""
        self.compiled = compiled
        # An instance attribute, not a method: the caller's call goes straight to the
        # compiled function, with no lookup of the current flag value in between.
        self.is_enabled: Check = compiled.check

    def track(self, user: object, attributes: Mapping[str, object] | None = None) -> Track:
        """``with flag.track(user) as enabled:`` evaluates once and records one outcome."""
        return Track(self.compiled, user, attributes)

    def record(
        self,
        user: object,
        ok: bool = True,
        duration_ms: float | None = None,
        error_type: str | None = None,
        values: Mapping[str, float] | None = None,
        attributes: Mapping[str, object] | None = None,
    ) -> None:
        """One outcome by hand, in the arm of this user's answer. Never raises.

        ``values`` are named business values observed with it (``observe`` each); they are
        not part of the outcome sample.
        """
        self._record(self.compiled, user, ok, duration_ms, error_type, attributes)
        if values is not None:
            self._values.record_values(self.compiled, user, values, attributes)

    def observe(
        self,
        user: object,
        name: str,
        value: float,
        attributes: Mapping[str, object] | None = None,
    ) -> None:
        """One named business value (``value:NAME`` gates) in this user's arm (rules count, as
        for ``is_enabled``). Never raises: a bad name or number is dropped and counted."""
        self._values.observe(self.compiled, user, name, value, attributes)

    def evaluate(self, user: object, attributes: Mapping[str, object] | None = None) -> Evaluation:
        """The answer with its reason (slower than ``is_enabled``; for diagnostics)."""
        return self._client.evaluate(self.key, user, default=self.default, attributes=attributes)

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
        monotonic: Callable[[], float] = time.monotonic,
        start: bool = True,
        memory_probe: Callable[[], float] = resident_mb,
        **overrides: Any,
    ) -> None:
        self.settings = settings or load_settings(redis_url=redis_url, **overrides)
        self.clock = clock
        overrides_env = read_overrides(os.environ if environ is None else environ)
        # Handles are made on first use, after the recorder below exists.
        self.table: FlagTable[FlagHandle] = FlagTable(
            overrides_env,
            lambda key, default, compiled: FlagHandle(self, key, default, compiled, self._recorder),
        )
        self._by_default = self.table.by_default
        self._redis = _SharedRedis(self.settings)
        keys = Keys(self.settings.key_prefix)
        retention = self.settings.metrics_retention
        history = self.settings.history_retention
        self._recorder: Recorder = Recorder(
            self.table,
            lambda: MetricsStore(self._redis(), keys, retention, history),
            clock=clock,
            capacity=self.settings.metrics_buffer,
            flush_interval=self.settings.flush_interval,
            memory_probe=memory_probe,
        )
        self._sync = FlagSync(self.table, self._redis, self.settings, monotonic=monotonic)
        os.register_at_fork(after_in_child=functools.partial(_after_fork, weakref.ref(self)))
        if start:
            self._sync.start()
            self._recorder.start()

    # -- reading ------------------------------------------------------------------------

    def flag(self, key: str, default: bool = False) -> FlagHandle:
        return self.table.handle(key, _as_bool(default))

    def is_enabled(
        self,
        key: str,
        user: object,
        default: bool = False,
        attributes: Mapping[str, object] | None = None,
    ) -> bool:
        try:
            return self._by_default[default][key].is_enabled(user, attributes)
        except (KeyError, TypeError):
            pass  # first call for this key, or an odd default: take the slow path once
        fallback = _as_bool(default)
        try:
            return self.flag(key, fallback).is_enabled(user, attributes)
        except Exception:
            return fallback

    def evaluate(
        self,
        key: str,
        user: object,
        default: bool = False,
        attributes: Mapping[str, object] | None = None,
    ) -> Evaluation:
        """The answer with its reason (``Reason.RULE`` when a targeting rule decided)."""
        default = _as_bool(default)
        try:
            return evaluate(
                self.table.flags.get(key),
                str(user),
                override=self.table.overrides.get(key),
                default=default,
                attributes=attributes if isinstance(attributes, Mapping) else None,
            )
        except Exception:
            return Evaluation(default, Reason.UNKNOWN, None)

    def known_flags(self) -> dict[str, Flag]:
        return dict(self.table.flags)

    def known_flag(self, key: str) -> Flag | None:
        """The value of one flag as this client holds it (None: unknown here)."""
        return self.table.flags.get(key)

    # -- listening ----------------------------------------------------------------------

    def on_change(self, callback: Callable[[list[str]], None]) -> Callable[[], None]:
        """Call ``callback(keys)`` after flags change: a change from the channel, or a full
        load that found differences. It runs on the sync thread, so keep it short; an
        exception in it is logged, never raised. Returns a function that removes it."""
        return self.table.changed.add(callback)

    def on_connection(self, callback: Callable[[bool], None]) -> Callable[[], None]:
        """Call ``callback(False)`` when Redis stops answering and ``callback(True)`` when it
        answers again (after the full load). Same rules as ``on_change``."""
        return self._sync.connection.add(callback)

    @property
    def connected(self) -> bool:
        return self._sync.follower.connected

    def wait_synced(self, timeout: float = 5.0) -> bool:
        """Block until the first sync from Redis (tests and scripts; never needed for reads)."""
        return self._sync.follower.synced.wait(timeout)

    # -- lifecycle ----------------------------------------------------------------------

    def flush(self) -> None:
        """Send buffered outcomes now (the flusher does this every flush_interval)."""
        self._recorder.flush()

    def close(self) -> None:
        self._sync.stop()
        self._recorder.stop()
        self._redis.close()

    def __enter__(self) -> RolloutClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
