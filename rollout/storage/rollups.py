"""The packed history behind the charts: every span's counters in one binary string.

The gates read a few 10-second window hashes at a time; a chart reads thousands of spans at
once, and a hash of ~50 fields per span costs ~50 fields to transfer and parse. So the flush
also keeps a packed copy at two resolutions, 10 seconds (for ``ROLLOUT_METRICS_RETENTION``) and
5 minutes (for ``ROLLOUT_HISTORY_RETENTION``):

- counts: one string per span, unsigned 32-bit counters updated with ``BITFIELD ... INCRBY``
  (atomic across processes, saturating), both arms interleaved: offset ``2 * slot + arm`` with
  slot 0 samples, 1 errors, 2 exposures, ``3 + i`` latency bucket ``i``, arm 0 control and
  1 treatment. A whole stage is then one ``MGET`` and ``struct.unpack`` per span.
- errors by type: one hash per group of spans (an hour of 10-second spans, a day of 5-minute
  ones), field ``SPAN:ARM:TYPE``;
- business values: one hash per group, fields ``SPAN:ARM:NAME:n|mean|m2`` (each value's
  moments in the span, merged across processes by the flush script with Chan's formula);
- memory: one sorted set per group, member = span, score = the highest growth reported in it
  (``ZADD GT`` keeps the maximum across processes without a read).

Each key expires its resolution's retention after its last write, so a key (and its group)
outlives the stage by that long and no more.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from redis.client import NEVER_DECODE

from rollout.core.bounds import Moments
from rollout.core.defaults import ROLLUP_SECONDS
from rollout.storage.keys import Keys

COUNTERS = 3  # samples, errors, exposures; then the latency buckets
ARM_INDEX = {"control": 0, "treatment": 1}
ARM_NAMES = ("control", "treatment")

Dense = tuple[int, ...]
"""An arm's counters over one span: samples, errors, exposures, then each latency bucket."""


@dataclass(frozen=True, slots=True)
class Resolution:
    code: str  # in the key names
    seconds: int
    group: int  # spans per errors-by-type hash and memory set


FINE = Resolution("f", 10, 360)
COARSE = Resolution("c", ROLLUP_SECONDS, 288)


@dataclass(frozen=True, slots=True)
class SpanCounts:
    start: int  # epoch seconds
    control: Dense
    treatment: Dense


Arm = tuple[str, int, int, int, dict[int, int], dict[str, int]]
"""(arm, samples, errors, exposures, latency histogram, errors by type)."""


@dataclass(frozen=True, slots=True)
class TallyParts:
    """What one flush adds to one (flag, epoch) at one resolution."""

    counts: str  # the span's packed counts
    offsets: list[tuple[int, int]]  # (u32 index, increment)
    types: str  # the group's errors-by-type hash
    typed: list[tuple[str, int]]  # (field, increment)


def tally_parts(
    keys: Keys, res: Resolution, key: str, epoch: int, now: float, arms: Iterable[Arm]
) -> TallyParts:
    span = int(now // res.seconds)
    group = span // res.group
    offsets: list[tuple[int, int]] = []
    typed: list[tuple[str, int]] = []
    for arm, samples, errors, exposures, latency, by_type in arms:
        a = ARM_INDEX[arm]
        for slot, count in ((0, samples), (1, errors), (2, exposures)):
            if count:
                offsets.append((2 * slot + a, count))
        for index, count in latency.items():
            offsets.append((2 * (COUNTERS + index) + a, count))
        for name, count in by_type.items():
            typed.append((f"{span}:{arm[0]}:{name}", count))
    return TallyParts(
        keys.history_counts(key, res.code, epoch, span),
        offsets,
        keys.history_types(key, res.code, epoch, group),
        typed,
    )


def unpack_counts(raw: bytes | None, *, wide: bool = False) -> tuple[Dense, Dense]:
    """(control, treatment) from one packed string: u32 slots, or i64 (``wide``, the stage's
    running total). A missing key is two empty tuples."""
    if not raw:
        return (), ()
    size, code = (8, "q") if wide else (4, "I")
    values = struct.unpack(f">{len(raw) // size}{code}", raw[: len(raw) // size * size])
    return values[0::2], values[1::2]


def values_key(keys: Keys, res: Resolution, key: str, epoch: int, now: float) -> tuple[str, str]:
    """(the group's business-values hash, the span's number) for values flushed at ``now``."""
    span = int(now // res.seconds)
    return keys.history_values(key, res.code, epoch, span // res.group), str(span)


def memory_key(keys: Keys, res: Resolution, key: str, epoch: int, now: float) -> tuple[str, str]:
    """(the group's memory set, the span's member) for a memory report at ``now``."""
    span = int(now // res.seconds)
    return keys.history_memory(key, res.code, epoch, span // res.group), str(span)


@dataclass(frozen=True, slots=True)
class SpanParts:
    """What one ``SpanRead`` found."""

    spans: list[SpanCounts]
    types: dict[tuple[int, str], dict[str, int]]  # (start, arm) -> {type: n}
    memory: list[tuple[int, float]]  # (start, max MB)
    values: dict[tuple[int, str], dict[str, Moments]]  # (start, arm) -> {name: moments}


class SpanRead:
    """The commands that read one stage's spans from ``first`` to ``last`` (span numbers)."""

    def __init__(
        self, keys: Keys, res: Resolution, key: str, epoch: int, first: int, last: int
    ) -> None:
        self.res, self.first, self.last = res, first, last
        self.counts = [keys.history_counts(key, res.code, epoch, s) for s in range(first, last + 1)]
        groups = range(first // res.group, last // res.group + 1)
        self.types = [keys.history_types(key, res.code, epoch, g) for g in groups]
        self.memory = [keys.history_memory(key, res.code, epoch, g) for g in groups]
        self.values = [keys.history_values(key, res.code, epoch, g) for g in groups]

    def queue(self, pipe: Any) -> None:
        pipe.execute_command("MGET", *self.counts, **{NEVER_DECODE: True})
        for name in self.types:
            pipe.hgetall(name)
        for name in self.memory:
            pipe.zrange(name, 0, -1, withscores=True)
        for name in self.values:
            pipe.hgetall(name)

    def parse(self, replies: Iterator[Any]) -> SpanParts:
        """The replies of ``queue``'s commands, in order."""
        spans: list[SpanCounts] = []
        seconds = self.res.seconds
        for offset, raw in enumerate(next(replies)):
            if raw:
                slots = struct.unpack(f">{len(raw) // 4}I", raw[: len(raw) // 4 * 4])
                spans.append(SpanCounts((self.first + offset) * seconds, slots[0::2], slots[1::2]))
        types: dict[tuple[int, str], dict[str, int]] = {}
        arms = {"c": ARM_NAMES[0], "t": ARM_NAMES[1]}
        for _name in self.types:
            for field, count in next(replies).items():
                span, arm, name = field.split(":", 2)
                number = int(span)
                if self.first <= number <= self.last:
                    types.setdefault((number * seconds, arms[arm]), {})[name] = int(count)
        memory: list[tuple[int, float]] = []
        for _name in self.memory:
            for member, score in next(replies):
                number = int(member)
                if self.first <= number <= self.last:
                    memory.append((number * seconds, float(score)))
        parts: dict[tuple[int, str], dict[str, dict[str, str]]] = {}
        for _name in self.values:
            for field, value in next(replies).items():
                head, part = field.rsplit(":", 1)
                span, arm, name = head.split(":", 2)
                number = int(span)
                if self.first <= number <= self.last:
                    where = parts.setdefault((number * seconds, arms[arm]), {})
                    where.setdefault(name, {})[part] = value
        values = {
            where: {
                name: Moments(
                    int(m.get("n", 0)), float(m.get("mean", 0.0)), float(m.get("m2", 0.0))
                )
                for name, m in names.items()
                if int(m.get("n", 0)) > 0
            }
            for where, names in parts.items()
        }
        return SpanParts(spans, types, memory, values)
