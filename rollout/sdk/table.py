"""The SDK's flag table: the flags held, the handles answering for them, and what they replaced.

The follower (``sdk.sync``) updates it; the recorder reads the answer functions from it; the
client hands its handles out. Each handle's answer function is swapped in place when its flag
changes, so readers never take a lock; one lock serialises the writers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Generic, Protocol, TypeVar

from rollout.core.freshness import with_news
from rollout.core.model import Flag
from rollout.sdk.compiled import Compiled, compile_flag
from rollout.sdk.listeners import Listeners

log = logging.getLogger("rollout.sdk")


class Slot(Protocol):
    """What the table needs of a handle: which answer it gives, and a way to swap it."""

    key: str
    default: bool
    compiled: Compiled

    def swap(self, compiled: Compiled) -> None: ...


H = TypeVar("H", bound=Slot)


def _content(flag: Flag | None) -> Flag | None:
    """What answers depend on: the controller's status word changes nothing."""
    return None if flag is None else flag.with_changes(status=None)


class FlagTable(Generic[H]):
    def __init__(
        self, overrides: Mapping[str, bool], make_handle: Callable[[str, bool, Compiled], H]
    ) -> None:
        self.overrides = dict(overrides)
        self.flags: dict[str, Flag] = {}  # replaced whole on every change, never edited
        # By default value, then key: the client's is_enabled avoids building a tuple per call.
        self.by_default: dict[bool, dict[str, H]] = {False: {}, True: {}}
        self._make_handle = make_handle
        self._write_lock = threading.Lock()  # serialises the writers' swaps, never readers
        self._retired: list[Compiled] = []  # replaced since the last take; counts still owed
        self.changed: Listeners[list[str]] = Listeners()  # keys whose answers may differ
        self._ignored: set[tuple[str, str]] = set()  # (flag, attribute) already logged

    def after_fork(self) -> None:
        """In a forked child: a writer of the parent may have held the lock at the fork."""
        self._write_lock = threading.Lock()

    # -- handles ---------------------------------------------------------------------------

    def handle(self, key: str, default: bool) -> H:
        handle = self.by_default[default].get(key)
        if handle is None:
            with self._write_lock:
                handle = self.by_default[default].get(key)
                if handle is None:
                    compiled = self._compile(self.flags, key, default)
                    handle = self._make_handle(key, default, compiled)
                    self.by_default[default][key] = handle
        return handle

    def _compile(self, flags: dict[str, Flag], key: str, default: bool) -> Compiled:
        def report(attribute: str, value: object) -> None:
            self._ignored_attribute(key, attribute, value)

        return compile_flag(flags.get(key), self.overrides.get(key), default, key, report)

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

    def _recompile(self, flags: dict[str, Flag], handle: H) -> None:
        self._retired.append(handle.compiled)
        handle.swap(self._compile(flags, handle.key, handle.default))

    # -- the follower's side ---------------------------------------------------------------

    def replace_all(self, flags: dict[str, Flag]) -> None:
        """A full load: Redis is the truth, so a flag that is gone answers its default."""
        with self._write_lock:
            before, after = self.flags, dict(flags)
            for handles in self.by_default.values():
                for key, handle in handles.items():
                    # Only what changed: a fresh answer function would orphan the outcomes of
                    # track() blocks running in the old one, and most resyncs change nothing.
                    if _content(before.get(key)) != _content(after.get(key)):
                        self._recompile(after, handle)
            self.flags = after  # last: once a version shows here, every handle answers by it
        if self.changed:
            keys = before.keys() | after.keys()
            changed = [k for k in keys if _content(before.get(k)) != _content(after.get(k))]
            if changed:
                self.changed(sorted(changed))

    def apply(self, key: str, version: int, flag: Flag | None) -> bool:
        """One change from the channel; False when it is older news than the flag held."""
        with self._write_lock:
            updated = with_news(self.flags, key, version, flag)
            if updated is None:
                return False
            for handles in self.by_default.values():
                handle = handles.get(key)
                if handle is not None:
                    self._recompile(updated, handle)
            held, self.flags = self.flags.get(key), updated
        if self.changed and _content(held) != _content(flag):
            self.changed([key])
        return True

    # -- the recorder's side ---------------------------------------------------------------

    def take_retired(self) -> list[Compiled]:
        """Answer functions replaced since the last call: their counts may still be unsent."""
        with self._write_lock:
            retired, self._retired = self._retired, []
            return retired

    def current(self) -> list[Compiled]:
        return [h.compiled for handles in self.by_default.values() for h in list(handles.values())]
