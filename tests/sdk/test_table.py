"""The SDK's flag table without Redis: which news swaps an answer function, and what it keeps."""

from __future__ import annotations

from rollout.core.model import Flag, State
from rollout.sdk.compiled import Compiled
from rollout.sdk.table import FlagTable


class Handle:
    def __init__(self, key: str, default: bool, compiled: Compiled) -> None:
        self.key, self.default = key, default
        self.swap(compiled)

    def swap(self, compiled: Compiled) -> None:
        self.compiled = compiled


def rolling(version: int, percent_bp: int = 10_000, description: str = "") -> Flag:
    return Flag(
        key="F",
        salt="F",
        state=State.ROLLING,
        percent_bp=percent_bp,
        version=version,
        description=description,
    )


def table() -> FlagTable[Handle]:
    return FlagTable({}, Handle)


def test_older_news_from_the_channel_changes_nothing() -> None:
    flags = table()
    flags.replace_all({"F": rolling(3)})
    handle = flags.handle("F", False)
    before = handle.compiled
    assert not flags.apply("F", 2, rolling(2, percent_bp=0))
    assert not flags.apply("F", 3, None)  # not even a delete at the version held
    assert handle.compiled is before and handle.compiled.check("u")
    assert flags.flags["F"].version == 3
    assert flags.take_retired() == []


def test_newer_news_swaps_the_answer_and_retires_the_old_one() -> None:
    flags = table()
    flags.replace_all({"F": rolling(3)})
    on, off = flags.handle("F", False), flags.handle("F", True)
    replaced = [on.compiled, off.compiled]
    assert flags.apply("F", 4, rolling(4, percent_bp=0))
    assert not on.compiled.check("u") and not off.compiled.check("u")
    assert flags.take_retired() == replaced
    assert flags.apply("F", 5, None)  # deleted: each handle answers its default
    assert (on.compiled.check("u"), off.compiled.check("u")) == (False, True)
    assert "F" not in flags.flags
    assert sorted(id(c) for c in flags.current()) == sorted(id(h.compiled) for h in (on, off))


def test_a_full_load_recompiles_only_what_changed() -> None:
    flags = table()
    flags.replace_all({"F": rolling(3)})
    handle = flags.handle("F", False)
    before = handle.compiled
    flags.replace_all({"F": rolling(3)})
    assert handle.compiled is before
    flags.replace_all({"F": rolling(4, description="changed")})
    assert handle.compiled is not before
    flags.replace_all({})
    assert not handle.compiled.check("u")  # gone from Redis: the default
    assert len(flags.take_retired()) == 2


def test_an_override_wins_over_the_flag_but_not_over_a_kill() -> None:
    flags: FlagTable[Handle] = FlagTable({"F": True}, Handle)
    flags.replace_all({"F": rolling(1, percent_bp=0)})
    handle = flags.handle("F", False)
    assert handle.compiled.check("u")
    assert flags.handle("F", False) is handle  # one handle per key and default
    assert flags.apply("F", 2, rolling(2).with_changes(state=State.KILLED))
    assert not handle.compiled.check("u")
