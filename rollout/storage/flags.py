"""The flag repository: reads, compare-and-set writes, audit and change notices in one step.

A write is one server-side script in the flag's slot (``scripts.WRITE_FLAG``): the version
check, the value, exactly one audit entry and the change message, all or nothing, so the audit
can never disagree with the flags, on one server, a Sentinel group or a Cluster alike. Each
write carries an id that the script remembers for a while, so a write sent again after a lost
reply or a failover never applies twice. ``WAIT`` is pipelined behind it on the same node
connection (``topology.on_flag_node``), so an acknowledged write survives a failover.

Global keys are written outside the script, in an order that keeps every invariant readable:

- a flag exists iff its value key exists (the script alone decides that);
- the index is a hint: added to before a create (and again after, against a racing delete),
  removed after a delete unless the flag is back. A reader takes only flags whose value
  exists, and ``reconcile_index`` (run by ``migrate`` at start) adds any that a crash between
  two steps left out;
- the audit's global sequence number is taken (INCR) before the script and passed in, so the
  merged log of every flag has one true order; a refused write only leaves a gap.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from rollout.core.errors import (
    ConcurrentUpdate,
    FlagExists,
    FlagNotFound,
    LeadershipLost,
    MalformedFlag,
)
from rollout.core.model import Flag, Status
from rollout.core.schema import flag_to_dict
from rollout.core.units import render_instant
from rollout.storage.codec import (
    decode_flag,
    decode_status,
    dumps,
    encode_flag,
    encode_status,
    status_message,
)
from rollout.storage.errors import storage_call, wrapped
from rollout.storage.keys import Keys
from rollout.storage.scripts import SET_STATUS, WRITE_FLAG
from rollout.storage.topology import Replication, on_flag_node, through_failover

AUDIT_MAX_LEN = 10_000  # per flag; approximate trimming keeps XADD O(1)
WRITE_ID_TTL_MS = 24 * 3600 * 1000  # far longer than any retry of one write
_STALE_RETRIES = 8  # the high-water mark moved under us: recompute the version

# Whether the latest write of this thread/context stood without its replicas (WAIT timed out).
_UNREPLICATED: ContextVar[bool] = ContextVar("rollout_unreplicated", default=False)


def take_unreplicated() -> bool:
    """True (once) when a write since the last call stood before its replicas confirmed it."""
    pending = _UNREPLICATED.get()
    _UNREPLICATED.set(False)
    return pending


def append_audit(client: Any, keys: Keys, key: str, fields: Mapping[str, Any]) -> str:
    """One audit entry on ``key``'s stream that writes no flag (a trigger's create or delete).

    The same two steps as a write's, each in one slot: the global sequence number (and the
    ``audited`` hint) on the globals' slot first, then the XADD on the flag's own stream.
    """
    glob = client.pipeline(transaction=False)
    glob.sadd(keys.audited, key)
    glob.incr(keys.audit_sequence)
    seq = glob.execute()[-1]
    entry = {"seq": seq, **fields}
    return str(
        through_failover(
            client,
            lambda: client.xadd(keys.audit(key), entry, maxlen=AUDIT_MAX_LEN, approximate=True),
        )
    )


@dataclass(frozen=True)
class AuditEntry:
    actor: str
    action: str
    reason: str | None
    at: int


_STALE = object()


class FlagStore:
    def __init__(self, client: Any, keys: Keys, replication: Replication | None = None) -> None:
        # redis-py's typing does not know decode_responses=True; every reply here is str.
        self.redis: Any = client
        self.keys = keys
        self.replication = replication

    # -- reads ---------------------------------------------------------------------------

    @storage_call
    def get(self, key: str) -> Flag:
        def read() -> tuple[Any, Any]:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hmget(self.keys.flag(key), "v", "d")
            pipe.get(self.keys.status(key))
            return tuple(pipe.execute())

        (version, doc), status = through_failover(self.redis, read)
        if version is None and doc is None:
            raise FlagNotFound(key)
        return decode_flag(key, version, doc, status)

    @storage_call
    def version(self, key: str) -> int:
        """The stored version, 0 when absent; readable even when the value is malformed."""
        return int(
            through_failover(self.redis, lambda: self.redis.hget(self.keys.flag(key), "v")) or 0
        )

    @staticmethod
    def take_unreplicated() -> bool:
        """True (once) when a write of this thread stood before its replicas confirmed it."""
        return take_unreplicated()

    @storage_call
    def keys_list(self) -> list[str]:
        """Every flag whose value exists (the index is only a hint)."""
        names = sorted(self.redis.smembers(self.keys.index))
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.exists(self.keys.flag(name))
        return [name for name, exists in zip(names, pipe.execute(), strict=True) if exists]

    @storage_call
    def load_all(
        self, known: Mapping[str, Flag] | None = None
    ) -> tuple[dict[str, Flag], list[MalformedFlag]]:
        """Every flag; malformed ones are reported, not raised.

        With ``known`` (what the caller holds), a flag whose stored version is the one it
        holds is neither fetched nor decoded again: only its status is, which lives apart.
        """
        names = sorted(self.redis.smembers(self.keys.index))
        if known is None:
            pipe = self.redis.pipeline(transaction=False)
            for name in names:
                pipe.hmget(self.keys.flag(name), "v", "d")
                pipe.get(self.keys.status(name))
            replies = pipe.execute()
            rows = [(n, *replies[2 * i], replies[2 * i + 1]) for i, n in enumerate(names)]
            return self._decoded(rows, {})
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.hget(self.keys.flag(name), "v")
            pipe.get(self.keys.status(name))
        replies = pipe.execute()
        reused: dict[str, tuple[Flag, str | None]] = {}
        changed: list[tuple[str, str | None]] = []
        for i, name in enumerate(names):
            version, status = replies[2 * i], replies[2 * i + 1]
            if version is None:
                continue  # a stale hint of the index
            held = known.get(name)
            if held is not None and held.version == int(version):
                reused[name] = (held, status)
            else:
                changed.append((name, status))
        pipe = self.redis.pipeline(transaction=False)
        for name, _ in changed:
            pipe.hmget(self.keys.flag(name), "v", "d")
        fetched = pipe.execute() if changed else []
        rows = [
            (name, *pair, status) for (name, status), pair in zip(changed, fetched, strict=True)
        ]
        return self._decoded(rows, reused)

    @staticmethod
    def _decoded(
        rows: list[tuple[str, str | None, str | None, str | None]],
        reused: dict[str, tuple[Flag, str | None]],
    ) -> tuple[dict[str, Flag], list[MalformedFlag]]:
        flags: dict[str, Flag] = {}
        problems: list[MalformedFlag] = []
        for name, (held, status) in reused.items():
            fresh = decode_status(status)
            flags[name] = held if fresh == held.status else held.with_changes(status=fresh)
        for name, version, doc, status in rows:
            if version is None and doc is None:
                continue  # a stale hint of the index, or deleted between the two calls
            try:
                flags[name] = decode_flag(name, version, doc, status)
            except MalformedFlag as problem:
                problems.append(problem)
        return dict(sorted(flags.items())), problems

    # -- writes --------------------------------------------------------------------------

    def write(
        self,
        new: Flag | None,
        *,
        key: str,
        expected_version: int,
        audit: AuditEntry,
        before: Flag | None,
        write_status: bool = False,
        write_id: str | None = None,
        token: int = 0,
    ) -> Flag | None:
        """Store ``new`` (or delete when None) iff the stored version is ``expected_version``.

        ``expected_version`` 0 means "must not exist" (create). Raises ``ConcurrentUpdate`` when
        another write got there first, ``FlagExists``/``FlagNotFound`` for create/update races,
        ``LeadershipLost`` when ``token`` (a leader's) is older than one the flag has seen.
        The controller's status is left alone unless ``write_status`` (restore sets it exactly).
        ``write_id`` names this write across retries (a fresh one when None).
        """
        write_id = write_id or uuid.uuid4().hex
        with wrapped():
            for _ in range(_STALE_RETRIES):
                result = through_failover(
                    self.redis,
                    lambda: self._attempt(
                        new, key, expected_version, audit, before, write_status, write_id, token
                    ),
                )
                if result is not _STALE:
                    stored: Flag | None = result[0]
                    break
            else:
                raise ConcurrentUpdate(f"flag {key!r} kept changing during the write")
            through_failover(self.redis, lambda: self._after(key, stored is not None))
        if stored is None or new is None:
            return None
        return stored.with_changes(status=new.status)

    def _attempt(
        self,
        new: Flag | None,
        key: str,
        expected_version: int,
        audit: AuditEntry,
        before: Flag | None,
        write_status: bool,
        write_id: str,
        token: int,
    ) -> Any:
        flag_key, hwm_key = self.keys.flag(key), self.keys.high_water(key)
        read = self.redis.pipeline(transaction=False)
        read.hget(flag_key, "v")
        read.get(hwm_key)
        read.get(self.keys.write_id(key, write_id))
        current_raw, hwm_raw, done = read.execute()
        if done is not None:  # this very write landed already: its outcome, nothing again
            return (None if new is None else new.with_changes(version=int(done), status=None)), int(
                done
            )
        current = int(current_raw or 0)
        if current != expected_version:  # refused before spending a sequence number
            self._refuse("conflict", current, key, expected_version)
        version = max(current, int(hwm_raw or 0)) + 1
        stored = None if new is None else new.with_changes(version=version, status=None)
        # Before the script: the index hint (a crash after this leaves a harmless hint) and
        # the audit's sequence number; one pipeline on the global keys' slot.
        glob = self.redis.pipeline(transaction=False)
        if stored is not None:
            glob.sadd(self.keys.index, key)
        glob.sadd(self.keys.audited, key)
        glob.incr(self.keys.audit_sequence)
        seq = glob.execute()[-1]
        status_mode, status_value = "keep", ""
        if write_status and new is not None and new.status is not None:
            status_mode, status_value = "set", encode_status(new.status)
        elif write_status:
            status_mode = "del"
        fields = {
            "flag": key,
            "actor": audit.actor,
            "action": audit.action,
            "reason": audit.reason or "",
            "before": "" if before is None else dumps(flag_to_dict(before)),
            "after": "" if stored is None else dumps(flag_to_dict(stored)),
            "at": render_instant(audit.at) or "",
            "version": version,
        }
        message = {"key": key, "version": version}
        message["flag"] = None if stored is None else flag_to_dict(stored)
        keys = [
            flag_key,
            self.keys.status(key),
            hwm_key,
            self.keys.audit(key),
            self.keys.write_id(key, write_id),
            self.keys.fence(key),
        ]
        args: list[Any] = [
            expected_version,
            version,
            "del" if stored is None else "set",
            "" if stored is None else encode_flag(stored),
            status_mode,
            status_value,
            self.keys.changes,
            dumps(message),
            AUDIT_MAX_LEN,
            WRITE_ID_TTL_MS,
            token,
            seq,
            self.keys.status_changes,
            status_message(key, status_value),
            *[part for item in fields.items() for part in item],
        ]
        reply = on_flag_node(
            self.redis,
            flag_key,
            lambda pipe: pipe.eval(WRITE_FLAG, len(keys), *keys, *args),
            self.replication,
        )
        code, number = str(reply.reply[0]), int(reply.reply[1])
        if code == "stale":
            return _STALE
        if code not in ("ok", "dup"):
            self._refuse(code, number, key, expected_version)
        if not reply.replicated:
            _UNREPLICATED.set(True)
        if stored is not None and number != version:  # a dup of an earlier attempt's version
            stored = stored.with_changes(version=number)
        return stored, number

    @staticmethod
    def _refuse(code: str, number: int, key: str, expected_version: int) -> None:
        if code == "fenced":
            raise LeadershipLost(
                f"flag {key!r} was written by a newer leader (token {number}); not acting"
            )
        if expected_version == 0:
            raise FlagExists(key)
        if number == 0:
            raise FlagNotFound(key)
        raise ConcurrentUpdate(f"flag {key!r} is at version {number}, not {expected_version}")

    def _after(self, key: str, exists: bool) -> None:
        """The index after the script: a create adds again (a racing delete may have removed
        it); a delete removes, then adds back when a create has landed meanwhile."""
        if exists:
            self.redis.sadd(self.keys.index, key)
            return
        self.redis.srem(self.keys.index, key)
        if self.redis.exists(self.keys.flag(key)):
            self.redis.sadd(self.keys.index, key)

    @storage_call
    def reconcile_index(self) -> int:
        """Add to the index every flag whose value exists but is not listed; how many."""
        listed = set(self.redis.smembers(self.keys.index))
        tag_start = len(self.keys.prefix) + 2
        found = {
            name[tag_start : -len("}:flag")]
            for name in self.redis.scan_iter(match=self.keys.value_pattern(), count=1000)
        }
        missing = sorted(found - listed)
        if missing:
            self.redis.sadd(self.keys.index, *missing)
        return len(missing)

    @storage_call
    def set_status(self, key: str, status: Status, *, token: int = 0) -> bool:
        """The controller's word, beside the versioned value: no version bump, no audit entry.

        Only while the flag exists, so a word landing after a delete cannot haunt a new flag
        of the same name. False when the flag is gone; ``LeadershipLost`` when ``token`` is
        older than one the flag has seen.
        """
        encoded = encode_status(status)
        keys = [self.keys.flag(key), self.keys.status(key), self.keys.fence(key)]
        args = [encoded, self.keys.status_changes, token, status_message(key, encoded)]
        written = int(self.redis.eval(SET_STATUS, len(keys), *keys, *args))
        if written < 0:
            raise LeadershipLost(f"flag {key!r} was written by a newer leader; not acting")
        return bool(written)

    # -- audit ---------------------------------------------------------------------------

    @staticmethod
    def _audit_entry(entry_id: str, fields: dict[str, str]) -> dict[str, Any]:
        return {
            "id": entry_id,
            "flag": fields.get("flag", ""),
            "actor": fields.get("actor", ""),
            "action": fields.get("action", ""),
            "reason": fields.get("reason") or None,
            "before": json.loads(fields["before"]) if fields.get("before") else None,
            "after": json.loads(fields["after"]) if fields.get("after") else None,
            "at": fields.get("at", ""),
            "version": int(fields.get("version") or 0),
            "seq": int(fields.get("seq") or 0),
        }

    @staticmethod
    def _id_order(entry_id: str) -> tuple[int, int]:
        ms, _, seq = entry_id.partition("-")
        return int(ms), int(seq or 0)

    @storage_call
    def audit(self, key: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first. Without a key, the newest entries of all flags merged by stream id."""
        names = [key] if key is not None else sorted(self.redis.smembers(self.keys.audited))
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.xrevrange(self.keys.audit(name), count=limit)
        merged = [item for reply in pipe.execute() for item in reply]
        merged.sort(key=lambda item: (int(item[1].get("seq") or 0), self._id_order(item[0])))
        merged.reverse()
        return [self._audit_entry(entry_id, fields) for entry_id, fields in merged[:limit]]

    @storage_call
    def ping(self) -> bool:
        return bool(self.redis.ping())
