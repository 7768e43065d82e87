"""Outcome metrics in Redis: per flag, per stage epoch, per arm, per 10-second window.

Each hash holds counters (``n`` samples, ``e`` errors, ``x`` exposures, ``t:TYPE`` errors by
type) and a latency histogram (``b:INDEX`` with the fixed buckets of ``core.histogram``), so
windows and processes merge exactly by addition. Every flush adds to the window's hash, to the
stage's running total and to the packed history of the charts (``storage/rollups.py``: 10-second
and 5-minute spans): a stage of any length is one HGETALL per arm. A flush is one pipeline with
one script call (``APPLY_FLUSH``) per stage it touches, in the flag's slot, guarded by the
process's batch sequence so that a batch sent again (a retry after a node died mid-flush) adds
nothing where it had already landed.

Lifetimes: windows and 10-second history expire ``retention`` seconds after their last write,
5-minute history ``history`` seconds after theirs. The stage's running total and its memory
gauge carry no TTL while the stage lasts (a quiet night must not lose a stage's evidence);
``HistoryStore.end_stage`` gives them one when the stage ends, and a flush never touches their
TTL, so a late flush into an ended stage keeps the TTL it was given.

Business values (DESIGN §4.1) sit in the window and stage hashes as ``v:NAME:n``, ``v:NAME:mean``
and ``v:NAME:m2``. A flush brings each process's count, mean and M2 since its last flush, and the
script folds them in with Chan's formula, atomically and in the flag's slot; adding means or
M2s (HINCRBYFLOAT) would not be the moments of the union. Reading several windows merges them
with the same formula (``core.evidence.chan``). The packed history holds counters only: values
are not in the charts' rollups.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import NoScriptError

from rollout.core import defaults
from rollout.core.bounds import Moments
from rollout.core.evidence import Arms, ArmStats, Evidence, WindowCounts
from rollout.storage import rollups
from rollout.storage.errors import storage_call
from rollout.storage.keys import Keys

WINDOW_SECONDS = 10
ARMS = ("control", "treatment")

# One stage's part of one flush, in the flag's slot. KEYS[1]: the process's marker there,
# ARGV[1] the batch's sequence (0: no guard, the marker is only the call's route), ARGV[2] the
# marker's TTL: when the marker holds this sequence or a later one, this batch was applied here
# already and nothing is done again (a process sends its batches in order, one at a time).
# Then operations: a code, the number m of keys, m (key index, TTL: 0 leaves the key's TTL
# alone) pairs, the number n of items and the items, applied to each key in turn:
#   h: n (field, increment) for HINCRBY        b: n (u32 index, increment) for BITFIELD SAT
#   s: n (field, value) for HSET               z: n (member, score) for ZADD GT
#   v: n (name, n, mean, M2) folded in with Chan et al.: n = na + nb, d = mb - ma,
#      mean = ma + d nb / n, M2 = M2a + M2b + d^2 na nb / n ('%.17g' keeps every double exactly;
#      the SDK bounds each observation, so nothing here can reach infinity).
APPLY_FLUSH = """
local sequence = tonumber(ARGV[1])
if sequence > 0 then
  if (tonumber(redis.call('GET', KEYS[1])) or 0) >= sequence then
    return 0
  end
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
local i = 3
while i <= #ARGV do
  local op, m = ARGV[i], tonumber(ARGV[i + 1])
  local first = i + 2 + 2 * m
  local n = tonumber(ARGV[first])
  local width = 2
  if op == 'v' then width = 4 end
  for j = 1, m do
    local key, ttl = KEYS[tonumber(ARGV[i + 2 * j])], tonumber(ARGV[i + 2 * j + 1])
    local last = first + width * (n - 1)
    if op == 'h' then
      for k = first + 1, last + 1, 2 do
        redis.call('HINCRBY', key, ARGV[k], ARGV[k + 1])
      end
    elseif op == 'b' then
      local command = {'BITFIELD', key, 'OVERFLOW', 'SAT'}
      for k = first + 1, last + 1, 2 do
        command[#command + 1] = 'INCRBY'
        command[#command + 1] = 'u32'
        command[#command + 1] = '#' .. ARGV[k]
        command[#command + 1] = ARGV[k + 1]
      end
      redis.call(unpack(command))
    elseif op == 's' then
      for k = first + 1, last + 1, 2 do
        redis.call('HSET', key, ARGV[k], ARGV[k + 1])
      end
    elseif op == 'z' then
      for k = first + 1, last + 1, 2 do
        redis.call('ZADD', key, 'GT', ARGV[k + 1], ARGV[k])
      end
    elseif op == 'v' then
      for k = first + 1, last + 1, 4 do
        local prefix = 'v:' .. ARGV[k] .. ':'
        local nb, mb, qb = tonumber(ARGV[k + 1]), tonumber(ARGV[k + 2]), tonumber(ARGV[k + 3])
        local held = redis.call('HMGET', key, prefix .. 'n', prefix .. 'mean', prefix .. 'm2')
        local na = tonumber(held[1]) or 0
        local total, mean, m2 = nb, mb, qb
        if na > 0 then
          local ma, qa = tonumber(held[2]) or 0, tonumber(held[3]) or 0
          total = na + nb
          local d = mb - ma
          mean = ma + d * (nb / total)
          m2 = qa + qb + d * d * (na * nb / total)
        end
        redis.call('HSET', key, prefix .. 'n', string.format('%d', total),
          prefix .. 'mean', string.format('%.17g', mean),
          prefix .. 'm2', string.format('%.17g', m2))
      end
    end
    if ttl > 0 then
      redis.call('EXPIRE', key, ttl)
    end
  end
  i = first + 1 + width * n
end
return 1
"""
APPLY_FLUSH_SHA = hashlib.sha1(APPLY_FLUSH.encode()).hexdigest()


class _Call:
    """One ``APPLY_FLUSH`` call being built: its keys (marker first) and operations."""

    def __init__(self, marker: str, sequence: int, ttl: int) -> None:
        self.keys = [marker]
        self.index: dict[str, int] = {}
        self.ops: list[Any] = [sequence, ttl]

    def op(self, code: str, targets: list[tuple[str, int]], items: list[Any]) -> None:
        width = 4 if code == "v" else 2
        self.ops += [code, len(targets)]
        for name, ttl in targets:
            if name not in self.index:
                self.keys.append(name)
                self.index[name] = len(self.keys)
            self.ops += [self.index[name], ttl]
        self.ops += [len(items) // width, *items]

    def args(self) -> list[Any]:
        return [len(self.keys), *self.keys, *self.ops]


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
    sequence: int = 0  # the process's batch number, kept across retries (``flush``); 0: none

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
        """One pipeline for the whole batch, one script call (``APPLY_FLUSH``) per stage.

        Each (flag, epoch) of the batch is one call in the flag's slot that first checks and
        moves ``process``'s marker there: a batch sent again with the same ``batch.sequence``
        (the recorder's retry after a failed flush, a Cluster client resending its pipeline
        after a node died mid-flush) adds nothing where it already landed. One small marker per
        (stage, process), living ``retention``: a retry after a longer outage could count the
        part that landed twice. A batch with sequence 0 has no guard (flushed twice, it counts
        twice).
        """
        window = window_of(now)
        calls: list[_Call] = []
        stages: dict[tuple[str, int], _Call] = {}

        def stage_call(key: str, epoch: int) -> _Call:
            found = stages.get((key, epoch))
            if found is None:
                found = stages[(key, epoch)] = _Call(
                    self.keys.flush_marker(key, epoch, process), batch.sequence, self.ttl
                )
                calls.append(found)
            return found

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
            call = stage_call(key, epoch)
            # The stage's total keeps whatever TTL it has (none while the stage lasts).
            stage = (self.keys.stage_metrics(key, epoch, arm), 0)
            current = (self.keys.window_metrics(key, epoch, window, arm), self.ttl)
            if values:
                call.op("h", [stage, current], [p for item in values.items() for p in item])
            if moments:
                call.op("v", [stage, current], moments)
            by_stage.setdefault((key, epoch), []).append((arm, tally))
        for (key, epoch), tallies in by_stage.items():
            arms = [
                (arm, t.samples, t.errors, t.exposures, t.latency, t.errors_by_type)
                for arm, t in tallies
            ]
            call = stage_call(key, epoch)
            for res, ttl in ((rollups.FINE, self.ttl), (rollups.COARSE, self.history_ttl)):
                parts = rollups.tally_parts(self.keys, res, key, epoch, now, arms)
                if parts.offsets:
                    call.op("b", [(parts.counts, ttl)], [p for o in parts.offsets for p in o])
                if parts.typed:
                    call.op("h", [(parts.types, ttl)], [p for t in parts.typed for p in t])
        for (key, epoch), megabytes in batch.memory_mb.items():
            call = stage_call(key, epoch)
            call.op("s", [(self.keys.memory(key, epoch), 0)], [process, f"{megabytes:.3f}"])
            for res, ttl in ((rollups.FINE, self.ttl), (rollups.COARSE, self.history_ttl)):
                name, span = rollups.memory_key(self.keys, res, key, epoch, now)
                call.op("z", [(name, ttl)], [span, round(megabytes, 3)])
        sdk_counts = (("dropped", batch.dropped), ("values_dropped", batch.values_dropped))
        counters = [part for name, count in sdk_counts if count for part in (name, count)]
        if counters:
            sdk = _Call(self.keys.sdk_flush_marker(process), batch.sequence, self.ttl)
            sdk.op("h", [(self.keys.sdk_stats, 0)], counters)
            calls.append(sdk)
        if calls:
            self._run(calls)

    def _run(self, calls: list[_Call]) -> None:
        """EVALSHA each call in one pipeline; those the node has no script for go again by EVAL
        (nothing of them ran). EVAL by name: a Cluster pipeline has no eval() method, and
        routes EVAL/EVALSHA by their keys (all in the flag's slot) to the flag's node."""
        pipe = self.redis.pipeline(transaction=False)
        for call in calls:
            pipe.execute_command("EVALSHA", APPLY_FLUSH_SHA, *call.args())
        replies = pipe.execute(raise_on_error=False) or []
        missing = [
            call
            for call, reply in zip(calls, replies, strict=False)
            if isinstance(reply, NoScriptError)
        ]
        if missing:
            pipe = self.redis.pipeline(transaction=False)
            for call in missing:
                pipe.execute_command("EVAL", APPLY_FLUSH, *call.args())
            replies = [r for r in replies if not isinstance(r, NoScriptError)]
            replies += pipe.execute(raise_on_error=False) or []
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply

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
