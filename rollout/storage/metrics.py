"""Outcome metrics in Redis: per flag, per stage epoch, per arm, per 10-second window.

Each hash holds counters (``n`` samples, ``e`` errors, ``x`` exposures, ``t:TYPE`` errors by
type) and a latency histogram (``b:INDEX`` with the fixed buckets of ``core.histogram``), so
windows and processes merge exactly by addition. Every flush adds to the window's hash, to the
stage's running total and to the packed history of the charts (``storage/rollups.py``: 10-second
and 5-minute spans), all in one pipeline: a stage of any length is one HGETALL per arm.

Lifetimes: windows and 10-second history expire ``retention`` seconds after their last write,
5-minute history ``history`` seconds after theirs. The stage's running total and its memory
gauge carry no TTL while the stage lasts (a quiet night must not lose a stage's evidence);
``HistoryStore.end_stage`` gives them one when the stage ends, and a flush never touches their
TTL, so a late flush into an ended stage keeps the TTL it was given.

Business values (DESIGN §4.1) sit in the window and stage hashes as ``v:NAME:n``, ``v:NAME:mean``
and ``v:NAME:m2``. A flush brings each process's count, mean and M2 since its last flush, and a
script (``MERGE_VALUES``) folds them in with Chan's formula, atomically and in the flag's slot
(in the same pipeline); adding means or M2s (HINCRBYFLOAT) would not be the moments of the
union. Reading several windows merges them with the same formula (``core.evidence.chan``). The
packed history holds counters only: values are not in the charts' rollups.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rollout.core import defaults
from rollout.core.bounds import Moments
from rollout.core.evidence import Arms, ArmStats, Evidence, WindowCounts
from rollout.storage import rollups
from rollout.storage.errors import storage_call
from rollout.storage.keys import Keys

WINDOW_SECONDS = 10
ARMS = ("control", "treatment")

# KEYS[1]: a metrics hash; ARGV: ttl (0: leave the key's TTL alone), then (name, n, mean, M2)
# per value. Chan et al.:
# n = na + nb, d = mb - ma, mean = ma + d nb / n, M2 = M2a + M2b + d^2 na nb / n. '%.17g' keeps
# every double exactly. The SDK bounds each observation, so nothing here can reach infinity.
MERGE_VALUES = """
local key = KEYS[1]
for i = 2, #ARGV, 4 do
  local prefix = 'v:' .. ARGV[i] .. ':'
  local nb, mb, qb = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local held = redis.call('HMGET', key, prefix .. 'n', prefix .. 'mean', prefix .. 'm2')
  local na = tonumber(held[1]) or 0
  local n, mean, m2 = nb, mb, qb
  if na > 0 then
    local ma, qa = tonumber(held[2]) or 0, tonumber(held[3]) or 0
    n = na + nb
    local d = mb - ma
    mean = ma + d * (nb / n)
    m2 = qa + qb + d * d * (na * nb / n)
  end
  redis.call('HSET', key, prefix .. 'n', string.format('%d', n),
    prefix .. 'mean', string.format('%.17g', mean), prefix .. 'm2', string.format('%.17g', m2))
end
if tonumber(ARGV[1]) > 0 then
  redis.call('EXPIRE', key, ARGV[1])
end
return 1
"""


def window_of(now: float) -> int:
    return int(now // WINDOW_SECONDS)


@dataclass
class ArmTally:
    """What one process gathered for one arm between two flushes."""

    samples: int = 0
    errors: int = 0
    exposures: int = 0
    errors_by_type: dict[str, int] = field(default_factory=dict)
    latency: dict[int, int] = field(default_factory=dict)
    values: dict[str, Moments] = field(default_factory=dict)  # business values since the last

    def fields(self) -> dict[str, int]:
        out = {"n": self.samples, "e": self.errors, "x": self.exposures}
        out.update({f"t:{name}": count for name, count in self.errors_by_type.items()})
        out.update({f"b:{index}": count for index, count in self.latency.items()})
        return {name: count for name, count in out.items() if count}


@dataclass
class Batch:
    """One flush: tallies by (flag key, stage epoch, arm), memory by (flag key, epoch)."""

    tallies: dict[tuple[str, int, str], ArmTally] = field(default_factory=dict)
    memory_mb: dict[tuple[str, int], float] = field(default_factory=dict)
    dropped: int = 0
    values_dropped: int = 0  # business values refused by the SDK (bad name or number, cap)

    def tally(self, key: str, epoch: int, arm: str) -> ArmTally:
        found = self.tallies.get((key, epoch, arm))
        if found is None:
            found = self.tallies[(key, epoch, arm)] = ArmTally()
        return found

    def __bool__(self) -> bool:
        return bool(self.tallies or self.memory_mb or self.dropped or self.values_dropped)


def arm_stats(raw: Mapping[str, str]) -> ArmStats:
    by_type: dict[str, int] = {}
    latency: dict[int, int] = {}
    names: set[str] = set()
    for name, value in raw.items():
        if name.startswith("t:"):
            by_type[name[2:]] = int(value)
        elif name.startswith("b:"):
            latency[int(name[2:])] = int(value)
        elif name.startswith("v:") and name.endswith(":n"):
            names.add(name[2:-2])
    values = {}
    for name in names:
        prefix = f"v:{name}:"
        n = int(raw.get(prefix + "n", 0))
        if n > 0:
            values[name] = Moments(
                n, float(raw.get(prefix + "mean", 0.0)), float(raw.get(prefix + "m2", 0.0))
            )
    return ArmStats(
        samples=int(raw.get("n", 0)),
        errors=int(raw.get("e", 0)),
        errors_by_type=by_type,
        latency=latency,
        exposures=int(raw.get("x", 0)),
        values=values,
    )


class MetricsStore:
    def __init__(
        self,
        client: Any,
        keys: Keys,
        retention_seconds: float,
        history_seconds: float = defaults.HISTORY_RETENTION,
    ) -> None:
        self.redis: Any = client
        self.keys = keys
        self.ttl = max(60, int(retention_seconds))
        self.history_ttl = max(self.ttl, int(history_seconds))

    @storage_call
    def flush(self, batch: Batch, *, now: float, process: str) -> None:
        """One pipeline for the whole batch: windows, stage totals, packed history, memory."""
        window = window_of(now)
        pipe = self.redis.pipeline(transaction=False)
        by_stage: dict[tuple[str, int], list[tuple[str, ArmTally]]] = {}
        for (key, epoch, arm), tally in batch.tallies.items():
            values = tally.fields()
            moments = [
                part
                for name, m in tally.values.items()
                if m.n > 0
                for part in (name, m.n, repr(m.mean), repr(m.m2))
            ]
            if not values and not moments:
                continue
            stage = self.keys.stage_metrics(key, epoch, arm)
            current = self.keys.window_metrics(key, epoch, window, arm)
            for field_name, count in values.items():
                pipe.hincrby(stage, field_name, count)
                pipe.hincrby(current, field_name, count)
            if moments:
                # The stage's total keeps whatever TTL it has (none while the stage lasts).
                # EVAL by name: a Cluster pipeline has no eval() method, and routes EVAL by
                # its one key (the flag's tag) to the flag's node.
                pipe.execute_command("EVAL", MERGE_VALUES, 1, stage, 0, *moments)
                pipe.execute_command("EVAL", MERGE_VALUES, 1, current, self.ttl, *moments)
            pipe.expire(current, self.ttl)
            by_stage.setdefault((key, epoch), []).append((arm, tally))
        for (key, epoch), tallies in by_stage.items():
            arms = [
                (arm, t.samples, t.errors, t.exposures, t.latency, t.errors_by_type)
                for arm, t in tallies
            ]
            for res, ttl in ((rollups.FINE, self.ttl), (rollups.COARSE, self.history_ttl)):
                rollups.add_tally(pipe, self.keys, res, ttl, key, epoch, now, arms)
        for (key, epoch), megabytes in batch.memory_mb.items():
            pipe.hset(self.keys.memory(key, epoch), process, f"{megabytes:.3f}")
            for res, ttl in ((rollups.FINE, self.ttl), (rollups.COARSE, self.history_ttl)):
                rollups.add_memory(pipe, self.keys, res, ttl, key, epoch, now, megabytes)
        if batch.dropped:
            pipe.hincrby(self.keys.sdk_stats, "dropped", batch.dropped)
        if batch.values_dropped:
            pipe.hincrby(self.keys.sdk_stats, "values_dropped", batch.values_dropped)
        pipe.execute()

    @storage_call
    def evidence(self, key: str, epoch: int, *, now: float, windows_ms: Iterable[int]) -> Evidence:
        """The stage total, each trailing window and the memory gauge, in one round trip."""
        current = window_of(now)
        spans = sorted(set(windows_ms))
        widest = max((math.ceil(ms / 1000 / WINDOW_SECONDS) for ms in spans), default=0)
        pipe = self.redis.pipeline(transaction=False)
        for arm in ARMS:
            pipe.hgetall(self.keys.stage_metrics(key, epoch, arm))
        for offset in range(widest):
            for arm in ARMS:
                pipe.hgetall(self.keys.window_metrics(key, epoch, current - offset, arm))
        pipe.hvals(self.keys.memory(key, epoch))
        replies = pipe.execute()
        stage = Arms(control=arm_stats(replies[0]), treatment=arm_stats(replies[1]))
        per_window = [
            (arm_stats(replies[2 + 2 * i]), arm_stats(replies[3 + 2 * i])) for i in range(widest)
        ]
        # Windows are numbered from the stage's first (the restart scan's alpha spending); none
        # before the stage began belongs to it.
        first = window_of(epoch / 1000)
        windows, series = {}, {}
        for ms in spans:
            count = min(math.ceil(ms / 1000 / WINDOW_SECONDS), max(current - first + 1, 1))
            windows[ms] = Arms(
                control=ArmStats.merge(c for c, _ in per_window[:count]),
                treatment=ArmStats.merge(t for _, t in per_window[:count]),
            )
            series[ms] = [
                WindowCounts(max(current - offset - first, 0), t, c)
                for offset, (c, t) in reversed(list(enumerate(per_window[:count])))
            ]
        reports = [float(v) for v in replies[-1]]
        return Evidence(
            stage=stage,
            windows=windows,
            memory_mb=max(reports) if reports else None,
            window_series=series,
        )

    @storage_call
    def sdk_dropped(self) -> int:
        return int(self.redis.hget(self.keys.sdk_stats, "dropped") or 0)

    @storage_call
    def sdk_values_dropped(self) -> int:
        """Business values the SDKs refused: bad names or numbers, or past the per-flag cap."""
        return int(self.redis.hget(self.keys.sdk_stats, "values_dropped") or 0)
