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
from typing import Any

from rollout.core.evaluation import Evaluation, Reason, evaluate
from rollout.core.model import KEY_PATTERN, Flag
from rollout.sdk.compiled import Check, Compiled, compile_flag
from rollout.sdk.metrics import Recorder, Track, resident_mb
from rollout.settings import Settings, load_settings

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


def _content(flag: Flag | None) -> Flag | None:
    """What answers depend on: the controller's status word changes nothing."""
    return None if flag is None else flag.with_changes(status=None)


def _listen(listeners: list[Any], callback: Any) -> Callable[[], None]:
    listeners.append(callback)

    def remove() -> None:
        if callback in listeners:
            listeners.remove(callback)

    return remove


class FlagHandle:
    """``client.flag(KEY)``. Its ``is_enabled`` is swapped in place when the flag changes."""

    __slots__ = ("_client", "_compiled", "default", "is_enabled", "key")

    def __init__(self, client: RolloutClient, key: str, default: bool) -> None:
        self._client = client
        self.key = key
        self.default = default
        self._set(client._compile(key, default))

    def _set(self, compiled: Compiled) -> None:
        self._compiled = compiled
        # An instance attribute, not a method: the caller's call goes straight to the
        # compiled function, with no lookup of the current flag value in between.
        self.is_enabled: Check = compiled.check

    def track(self, user: object, attributes: Mapping[str, object] | None = None) -> Track:
        """``with flag.track(user) as enabled:`` evaluates once and records one outcome."""
        return Track(self, user, attributes)

    def record(
        self,
        user: object,
        ok: bool = True,
        duration_ms: float | None = None,
        error_type: str | None = None,
        attributes: Mapping[str, object] | None = None,
    ) -> None:
        """One outcome by hand, in the arm of this user's answer. Never raises."""
        self._client._recorder.record(self._compiled, user, ok, duration_ms, error_type, attributes)

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
        start: bool = True,
        memory_probe: Callable[[], float] = resident_mb,
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
        self._retired: list[Compiled] = []  # replaced since the last flush; counts still owed
        self._change_listeners: list[Callable[[list[str]], None]] = []
        self._connection_listeners: list[Callable[[bool], None]] = []
        self._ignored: set[tuple[str, str]] = set()  # (flag, attribute) already logged
        from rollout.sdk.sync import Syncer

        self._recorder = Recorder(self, memory_probe=memory_probe)
        self._syncer = Syncer(self)
        if start:
            self._syncer.start()
            self._recorder.start()

    # -- reading ------------------------------------------------------------------------

    def flag(self, key: str, default: bool = False) -> FlagHandle:
        default = _as_bool(default)
        handle = self._handles.get((key, default))
        if handle is None:
            with self._write_lock:
                handle = self._handles.get((key, default))
                if handle is None:
                    handle = FlagHandle(self, key, default)
                    self._handles[(key, default)] = handle
                    self._by_default[bool(default)][key] = handle
        return handle

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
                self._flags.get(key),
                str(user),
                override=self._overrides.get(key),
                default=default,
                attributes=attributes if isinstance(attributes, Mapping) else None,
            )
        except Exception:
            return Evaluation(default, Reason.UNKNOWN, None)

    def known_flags(self) -> dict[str, Flag]:
        return dict(self._flags)

    def known_flag(self, key: str) -> Flag | None:
        """The value of one flag as this client holds it (None: unknown here)."""
        return self._flags.get(key)

    # -- listening ----------------------------------------------------------------------

    def on_change(self, callback: Callable[[list[str]], None]) -> Callable[[], None]:
        """Call ``callback(keys)`` after flags change: a change from the channel, or a resync
        that found differences. It runs on the sync thread, so keep it short; an exception in
        it is logged, never raised. Returns a function that removes the callback."""
        return _listen(self._change_listeners, callback)

    def on_connection(self, callback: Callable[[bool], None]) -> Callable[[], None]:
        """Call ``callback(False)`` when Redis stops answering and ``callback(True)`` when it
        answers again (after the resync). Same rules as ``on_change``."""
        return _listen(self._connection_listeners, callback)

    def _notify(self, listeners: list[Callable[[Any], None]], value: object) -> None:
        for callback in list(listeners):
            try:
                callback(value)
            except Exception:
                log.exception("rollout SDK listener %r failed", callback)

    @property
    def connected(self) -> bool:
        return self._syncer.connected

    def wait_synced(self, timeout: float = 5.0) -> bool:
        """Block until the first sync from Redis (tests and scripts; never needed for reads)."""
        return self._syncer.synced.wait(timeout)

    # -- updating (background thread) ---------------------------------------------------

    def _compile(self, key: str, default: bool) -> Compiled:
        def report(attribute: str, value: object) -> None:
            self._ignored_attribute(key, attribute, value)

        return compile_flag(self._flags.get(key), self._overrides.get(key), default, key, report)

    def _ignored_attribute(self, key: str, attribute: str, value: object) -> None:
        """A context value no rule can use: logged once per flag and attribute, then ignored.

        Only attributes that a rule names get here, so the set stays as small as the rules.
        """
        if (key, attribute) in self._ignored:
            return
        self._ignored.add((key, attribute))
        log.warning(
            "flag %s: context attribute %r is a %s, not a string, number or boolean; "
            "rules ignore it",
            key,
            attribute,
            type(value).__name__,
        )

    def _recompile(self, handle: FlagHandle) -> None:
        self._retired.append(handle._compiled)
        handle._set(self._compile(handle.key, handle.default))

    def _take_retired(self) -> list[Compiled]:
        """Answer functions replaced since the last call: their counts may still be unsent."""
        with self._write_lock:
            retired, self._retired = self._retired, []
            return retired

    def _current_compiled(self) -> list[Compiled]:
        return [h._compiled for h in list(self._handles.values())]

    def _replace_all(self, flags: dict[str, Flag]) -> None:
        """A full resync: Redis is the truth, so a flag that is gone answers its default."""
        with self._write_lock:
            before, self._flags = self._flags, dict(flags)
            changed = {
                key
                for key in before.keys() | flags.keys()
                if _content(before.get(key)) != _content(flags.get(key))
            }
            for (key, _default), handle in self._handles.items():
                # Only what changed: a fresh answer function would orphan the outcomes of
                # track() blocks running in the old one, and most resyncs change nothing.
                if key in changed:
                    self._recompile(handle)
        if changed:
            self._notify(self._change_listeners, sorted(changed))

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
            for (handle_key, _default), handle in self._handles.items():
                if handle_key == key:
                    self._recompile(handle)
        if _content(held) != _content(flag):
            self._notify(self._change_listeners, [key])
        return True

    def _connection_changed(self, connected: bool) -> None:
        """The syncer's word that Redis went away or came back (on each change only)."""
        self._notify(self._connection_listeners, connected)

    # -- lifecycle ----------------------------------------------------------------------

    def flush(self) -> None:
        """Send buffered outcomes now (the flusher does this every flush_interval)."""
        self._recorder.flush()

    def close(self) -> None:
        self._syncer.stop()
        self._recorder.stop()

    def __enter__(self) -> RolloutClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
