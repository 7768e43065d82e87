"""Outcome metrics in Redis: per flag, per stage epoch, per arm, per 10-second window.

An arm's evidence is counters (samples, errors, exposures), errors by type and a latency
histogram (the fixed buckets of ``core.histogram``), so windows and processes merge exactly by
addition. The counters and the histogram are packed (``storage/rollups.py``'s layout: slot
``2 * counter + arm``, both arms interleaved) and added with ``BITFIELD ... INCRBY``:

- the stage's running total: one string of signed 64-bit slots (``stage_counts``), which a
  stage at 100% of a busy service cannot saturate in years;
- each 10-second window: the 10-second span of the charts' history (``history_counts`` at
  resolution ``f``, unsigned 32-bit slots): the gates' windows and the charts read one copy;
- each 5-minute span of the history.

Errors by type and business values sit in per-arm hashes beside them, the stage's
(``stage_metrics``) and the window's (``window_metrics``): ``t:TYPE`` counts, and ``v:NAME:n``,
``v:NAME:mean``, ``v:NAME:m2``. A flush brings each process's count, mean and M2 since its last
flush, and the script folds them in with Chan's formula, atomically and in the flag's slot;
adding means or M2s would not be the moments of the union. Reading several windows merges them
with the same formula (``core.evidence.chan``). The packed history holds counters only: values
are not in the charts' rollups. A reader also adds whatever ``n``/``e``/``x``/``b:INDEX``
fields the stage and window hashes hold: the layout before the packed totals, so a stage that
was running when an install upgraded keeps its evidence without a migration.

A flush is one pipeline with one script call (``APPLY_FLUSH``) per stage it touches, in the
flag's slot, guarded by the process's batch sequence so that a batch sent again (a retry after a
node died mid-flush) adds nothing where it had already landed. The script makes few
``redis.call``s (each costs about a command) and builds few Lua strings: a stage's part of a
flush is three BITFIELDs, plus a hash write when an error type or a business value came in.

Lifetimes: windows and 10-second history expire ``retention`` seconds after a flush created
them, 5-minute history ``history`` seconds after; a key is written only during its own span, so
that is at most one span earlier than "after the last write", and saves an EXPIRE per key and
flush. The stage's running total, its hashes and its memory gauge carry no TTL while the stage
lasts (a quiet night must not lose a stage's evidence); ``HistoryStore.end_stage`` gives them one
when the stage ends, and a flush never touches their TTL, so a late flush into an ended stage
keeps the TTL it was given.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.client import NEVER_DECODE
from redis.exceptions import NoScriptError

from rollout.core import defaults
from rollout.core.bounds import Moments
from rollout.core.evidence import Arms, ArmStats, Evidence, WindowCounts
from rollout.storage import rollups
from rollout.storage.errors import storage_call
from rollout.storage.keys import Keys

WINDOW_SECONDS = 10
# A window is its 10-second span of the packed history (``evidence`` reads it there).
assert rollups.FINE.seconds == WINDOW_SECONDS
# A field ``HistoryStore.end_stage`` puts in the stage's hashes so that each exists when it is
# given its TTL (a flush after it adds to a key with a TTL, never creates one without).
ENDED_FIELD = "_ended"
ARMS = ("control", "treatment")

# One stage's part of one flush, in the flag's slot. KEYS[1]: the process's marker there,
# ARGV[1] the batch's sequence (0: no guard, the marker is only the call's route), ARGV[2] the
# marker's TTL: when the marker held this sequence or a later one, this batch was applied here
# already and nothing is done again (a process sends its batches in order, one at a time).
# Then operations: a code, the number m of keys, m targets, the number n of items and the
# items, applied to each target in turn. A target is (key index, TTL: 0 leaves the key's TTL
# alone); for 'c' (key index, TTL, BITFIELD type). A key with a TTL gets it when the call
# created it (its first slot, field or member was not there), so a flush that adds to a key
# costs no EXPIRE.
#   c: n ('#slot', increment) by one BITFIELD OVERFLOW SAT per key
#   h: n (field, increment) for HINCRBY        s: n (field, value) for HSET
#   z: n (member, score) for ZADD GT
#   v: n (field prefix, n, mean, M2) into PREFIX:n, PREFIX:mean and PREFIX:m2, folded in with
#      Chan et al.: n = na + nb, d = mb - ma, mean = ma + d nb / n,
#      M2 = M2a + M2b + d^2 na nb / n ('%.17g' keeps every double exactly; the SDK bounds each
#      observation, so nothing here can reach infinity).
APPLY_FLUSH = """
local sequence = tonumber(ARGV[1])
if sequence > 0 then
  local held = redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2], 'GET')
  if held and tonumber(held) >= sequence then
    redis.call('SET', KEYS[1], held, 'EX', ARGV[2])
    return 0
  end
end
local i = 3
while i <= #ARGV do
  local op, m = ARGV[i], tonumber(ARGV[i + 1])
  local tw, width = 2, 2
  if op == 'c' then tw = 3 end
  if op == 'v' then width = 4 end
  local first = i + 2 + tw * m
  local n = tonumber(ARGV[first])
  local stop = first + width * n
  local command
  for j = 1, m do
    local at = i + 2 + tw * (j - 1)
    local key, ttl = KEYS[tonumber(ARGV[at])], tonumber(ARGV[at + 1])
    local created = false
    if op == 'c' then
      local kind = ARGV[at + 2]
      if command == nil then
        command = {'BITFIELD', key, 'OVERFLOW', 'SAT'}
        for k = first + 1, stop, 2 do
          command[#command + 1] = 'INCRBY'
          command[#command + 1] = kind
          command[#command + 1] = ARGV[k]
          command[#command + 1] = ARGV[k + 1]
        end
      else
        command[2] = key
        if command[6] ~= kind then
          for k = 6, #command, 4 do command[k] = kind end
        end
      end
      created = redis.call(unpack(command))[1] == tonumber(ARGV[first + 2])
    elseif op == 'h' then
      for k = first + 1, stop, 2 do
        if redis.call('HINCRBY', key, ARGV[k], ARGV[k + 1]) == tonumber(ARGV[k + 1]) then
          created = true
        end
      end
    elseif op == 's' then
      for k = first + 1, stop, 2 do
        if redis.call('HSET', key, ARGV[k], ARGV[k + 1]) > 0 then created = true end
      end
    elseif op == 'z' then
      for k = first + 1, stop, 2 do
        if redis.call('ZADD', key, 'GT', ARGV[k + 1], ARGV[k]) > 0 then created = true end
      end
    elseif op == 'v' then
      for k = first + 1, stop, 4 do
        local prefix = ARGV[k] .. ':'
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
        else
          created = true
        end
        redis.call('HSET', key, prefix .. 'n', string.format('%d', total),
          prefix .. 'mean', string.format('%.17g', mean),
          prefix .. 'm2', string.format('%.17g', m2))
      end
    end
    if created and ttl > 0 then
      redis.call('EXPIRE', key, ttl)
    end
  end
  i = stop + 1
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

    def op(self, code: str, targets: list[tuple[Any, ...]], items: list[Any]) -> None:
        """``targets``: (key, TTL), or (key, TTL, BITFIELD type) for ``c``."""
        width = 4 if code == "v" else 2
        self.ops += [code, len(targets)]
        for name, *rest in targets:
            if name not in self.index:
                self.keys.append(name)
                self.index[name] = len(self.keys)
            self.ops += [self.index[name], *rest]
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


def _moments(observed: list[tuple[str, Moments]], prefix: str) -> list[Any]:
    """A ``v`` operation's items: (field prefix, n, mean, M2) per business value."""
    return [p for name, m in observed for p in (prefix + name, m.n, repr(m.mean), repr(m.m2))]


def dense_stats(counts: rollups.Dense) -> ArmStats:
    """An arm's packed counters (samples, errors, exposures, then each latency bucket)."""
    if not counts:
        return ArmStats()
    # A packed string is as long as the highest slot any flush wrote.
    samples, errors, exposures = (*counts[: rollups.COUNTERS], 0, 0, 0)[: rollups.COUNTERS]
    latency = {i: n for i, n in enumerate(counts[rollups.COUNTERS :]) if n}
    return ArmStats(samples=samples, errors=errors, exposures=exposures, latency=latency)


_COUNTER_FIELDS = ("n", "e", "x")


def _typed_and_values(raw: Mapping[str, str]) -> dict[str, str]:
    """A window hash without the counter fields an SDK before the packed layout also wrote
    there: that SDK wrote the same counts to the window's 10-second span, which is read."""
    return {k: v for k, v in raw.items() if k not in _COUNTER_FIELDS and not k.startswith("b:")}


def _pair(
    packed: tuple[rollups.Dense, rollups.Dense],
    control: Mapping[str, str],
    treatment: Mapping[str, str],
    *,
    legacy_counts: bool,
) -> tuple[ArmStats, ArmStats]:
    """(control, treatment): the packed counters plus what each arm's hash holds. The stage's
    hashes may hold counters of the layout before ``stage_counts`` (``legacy_counts``), added;
    a window's counters are its span's only."""
    if not legacy_counts:
        control, treatment = _typed_and_values(control), _typed_and_values(treatment)
    return (
        ArmStats.merge([dense_stats(packed[0]), arm_stats(control)]),
        ArmStats.merge([dense_stats(packed[1]), arm_stats(treatment)]),
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
            by_stage.setdefault((key, epoch), []).append((arm, tally))
        for (key, epoch), tallies in by_stage.items():
            arms = [
                (arm, t.samples, t.errors, t.exposures, t.latency, t.errors_by_type)
                for arm, t in tallies
            ]
            fine = rollups.tally_parts(self.keys, rollups.FINE, key, epoch, now, arms)
            coarse = rollups.tally_parts(self.keys, rollups.COARSE, key, epoch, now, arms)
            if fine.offsets:
                call = stage_call(key, epoch)
                counts = [(self.keys.stage_counts(key, epoch), 0, "i64")]
                counts += [(fine.counts, self.ttl, "u32"), (coarse.counts, self.history_ttl, "u32")]
                call.op("c", counts, [p for o, n in fine.offsets for p in (f"#{o}", n)])
            for parts, ttl in ((fine, self.ttl), (coarse, self.history_ttl)):
                if parts.typed:
                    call = stage_call(key, epoch)
                    call.op("h", [(parts.types, ttl)], [p for t in parts.typed for p in t])
            for arm, tally in tallies:
                # The stage's hash keeps whatever TTL it has (none while the stage lasts).
                hashes = [
                    (self.keys.stage_metrics(key, epoch, arm), 0),
                    (self.keys.window_metrics(key, epoch, window, arm), self.ttl),
                ]
                typed = [
                    p for name, n in tally.errors_by_type.items() if n for p in (f"t:{name}", n)
                ]
                if typed:
                    stage_call(key, epoch).op("h", hashes, typed)
                observed = [(name, m) for name, m in tally.values.items() if m.n > 0]
                if observed:
                    call = stage_call(key, epoch)
                    call.op("v", hashes, _moments(observed, "v:"))
                    for res, ttl in ((rollups.FINE, self.ttl), (rollups.COARSE, self.history_ttl)):
                        name, span = rollups.values_key(self.keys, res, key, epoch, now)
                        call.op("v", [(name, ttl)], _moments(observed, f"{span}:{arm[0]}:"))
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
        windows_back = [current - offset for offset in range(widest)]
        pipe = self.redis.pipeline(transaction=False)
        pipe.execute_command("GET", self.keys.stage_counts(key, epoch), **{NEVER_DECODE: True})
        for arm in ARMS:
            pipe.hgetall(self.keys.stage_metrics(key, epoch, arm))
        if windows_back:
            names = [
                self.keys.history_counts(key, rollups.FINE.code, epoch, w) for w in windows_back
            ]
            pipe.execute_command("MGET", *names, **{NEVER_DECODE: True})
        for window in windows_back:
            for arm in ARMS:
                pipe.hgetall(self.keys.window_metrics(key, epoch, window, arm))
        pipe.hgetall(self.keys.memory(key, epoch))
        replies = pipe.execute()
        control, treatment = _pair(
            rollups.unpack_counts(replies[0], wide=True), replies[1], replies[2], legacy_counts=True
        )
        stage = Arms(control=control, treatment=treatment)
        packed = replies[3] if windows_back else []
        hashes = replies[4 if windows_back else 3 : -1]
        per_window = [
            _pair(
                rollups.unpack_counts(packed[i]),
                hashes[2 * i],
                hashes[2 * i + 1],
                legacy_counts=False,
            )
            for i in range(widest)
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
        reports = [float(v) for name, v in replies[-1].items() if name != ENDED_FIELD]
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
