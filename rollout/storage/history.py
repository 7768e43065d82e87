"""History in Redis: the charts' reads, the stage moves from the audit, the stage summaries.

A history read is one pipeline: the flag's audit moves (when asked for), then the packed
history (``storage/rollups.py``) of the requested spans: one MGET per stage, plus a hash of
errors by type and a set of memory reports per hour (10-second spans) or day (5-minute spans).

Summaries live in one hash per flag, field = the stage's epoch, written once (HSETNX: a repeat
changes nothing) and never expiring; they go with the flag on delete and travel in snapshots.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rollout.core.bounds import Moments
from rollout.core.errors import RolloutError
from rollout.core.evidence import chan
from rollout.core.history import STAGE_ACTIONS, AuditMove
from rollout.core.units import parse_instant
from rollout.storage.codec import dumps
from rollout.storage.errors import storage_call
from rollout.storage.keys import Keys
from rollout.storage.metrics import ARMS, ENDED_FIELD
from rollout.storage.rollups import COARSE, FINE, SpanCounts, SpanRead


@dataclass(frozen=True, slots=True)
class Span:
    """Read one stage's metrics (by its epoch) from ``since`` to ``until`` (epoch seconds)."""

    epoch: int
    since: int
    until: int


@dataclass
class HistoryRows:
    """What a history read found: per-span counts, errors by type, memory reports."""

    moves: list[AuditMove] | None
    spans: list[SpanCounts]
    types: dict[tuple[int, str], dict[str, int]]
    memory: list[tuple[int, float]]
    values: dict[tuple[int, str], dict[str, Moments]]  # (span start, arm) -> {name: moments}


def _decode(text: str | None) -> Any:
    return json.loads(text) if text else None


def _move(fields: Mapping[str, str]) -> AuditMove | None:
    action = fields.get("action", "")
    if action not in STAGE_ACTIONS:
        return None
    try:
        at = parse_instant(fields.get("at") or None, "at") or 0
        return AuditMove(
            action=action,
            actor=fields.get("actor", ""),
            at=at,
            reason=fields.get("reason") or None,
            before=_decode(fields.get("before")),
            after=_decode(fields.get("after")),
        )
    except (ValueError, RolloutError):
        return None  # a hand-edited entry cannot hide the rest of the timeline


class HistoryStore:
    def __init__(self, client: Any, keys: Keys, history_seconds: float) -> None:
        self.redis: Any = client
        self.keys = keys
        self.history_ttl = max(60, int(history_seconds))

    @storage_call
    def moves(self, key: str) -> list[AuditMove]:
        """The flag's audit entries that may move a stage, oldest first."""
        return [m for _id, f in self.redis.xrange(self.keys.audit(key)) if (m := _move(f))]

    @storage_call
    def read(
        self, key: str, spans: Sequence[Span], *, coarse: bool, with_moves: bool
    ) -> HistoryRows:
        """One pipeline: the moves (``with_moves``), then each span's packed history at
        5-minute (``coarse``) or 10-second resolution."""
        res = COARSE if coarse else FINE
        reads = [
            SpanRead(self.keys, res, key, s.epoch, s.since // res.seconds, s.until // res.seconds)
            for s in spans
        ]
        pipe = self.redis.pipeline(transaction=False)
        if with_moves:
            pipe.xrange(self.keys.audit(key))
        for read in reads:
            read.queue(pipe)
        replies = iter(pipe.execute())
        moves = [m for _id, f in next(replies) if (m := _move(f))] if with_moves else None
        found = HistoryRows(moves=moves, spans=[], types={}, memory=[], values={})
        for read in reads:
            parts = read.parse(replies)
            found.spans += parts.spans
            for where, by_type in parts.types.items():
                merged = found.types.setdefault(where, {})
                for name, count in by_type.items():
                    merged[name] = merged.get(name, 0) + count
            found.memory += parts.memory
            for where, moments in parts.values.items():
                held = found.values.setdefault(where, {})
                for name, part in moments.items():
                    held[name] = chan((held[name], part)) if name in held else part
        return found

    # -- after a move ------------------------------------------------------------------------

    @storage_call
    def entry(self, key: str, *, version: int | None) -> AuditMove | None:
        """The audit move that wrote ``version`` (None: the newest delete), among the newest."""
        for _id, fields in self.redis.xrevrange(self.keys.audit(key), count=50):
            if version is None and fields.get("action") != "delete":
                continue
            if version is not None and fields.get("version") != str(version):
                continue
            return _move(fields)
        return None

    @storage_call
    def end_stage(self, key: str, epoch: int) -> None:
        """The ended stage's running totals and memory now expire with the rollups.

        Outcomes flushed late into them (SDKs flush each second) only add to the counts; a
        flush never changes a TTL, so these keys cannot become permanent again.
        """
        pipe = self.redis.pipeline(transaction=False)
        self._expire_stage(pipe, key, epoch)
        pipe.execute()

    def _expire_stage(self, pipe: Any, key: str, epoch: int) -> None:
        # Each key is made to exist first (adding nothing, or a field readers skip): a late
        # flush would otherwise create a missing one with no TTL, and it would never expire.
        counts = self.keys.stage_counts(key, epoch)
        pipe.execute_command("BITFIELD", counts, "OVERFLOW", "SAT", "INCRBY", "i64", "#0", 0)
        pipe.expire(counts, self.history_ttl)
        for arm in ARMS:
            pipe.hincrby(self.keys.stage_metrics(key, epoch, arm), ENDED_FIELD, 0)
            pipe.expire(self.keys.stage_metrics(key, epoch, arm), self.history_ttl)
        pipe.hsetnx(self.keys.memory(key, epoch), ENDED_FIELD, "")
        pipe.expire(self.keys.memory(key, epoch), self.history_ttl)

    # -- summaries ---------------------------------------------------------------------------

    @storage_call
    def add_summary(self, key: str, epoch: int, summary: Mapping[str, Any]) -> bool:
        """Store the summary of the stage ``epoch`` unless one is there: False if it was."""
        return bool(self.redis.hsetnx(self.keys.summaries(key), str(epoch), dumps(summary)))

    @storage_call
    def summaries(self, key: str) -> list[dict[str, Any]]:
        """Every summary of the flag, oldest stage first."""
        found = self.redis.hgetall(self.keys.summaries(key))
        return [json.loads(found[epoch]) for epoch in sorted(found, key=int)]

    @storage_call
    def all_summaries(self, keys: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """The summaries of several flags in one round trip (snapshots)."""
        names = list(keys)
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(self.keys.summaries(name))
        return {
            name: [json.loads(found[e]) for e in sorted(found, key=int)]
            for name, found in zip(names, pipe.execute(), strict=True)
            if found
        }

    @storage_call
    def replace_summaries(self, key: str, summaries: Iterable[Mapping[str, Any]]) -> None:
        """Make the flag's summaries exactly these (restore), in one transaction."""
        name = self.keys.summaries(key)
        values = {str(s["epoch"]): dumps(s) for s in summaries}
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(name)
        if values:
            pipe.hset(name, mapping=values)
        pipe.execute()

    @storage_call
    def forget(self, key: str, epoch: int | None) -> None:
        """A deleted flag: its summaries go, its last stage's totals start to expire."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(self.keys.summaries(key))
        if epoch is not None:
            self._expire_stage(pipe, key, epoch)
        pipe.execute()
