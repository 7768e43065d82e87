"""The per-flag event stream (the controller's status events) and what notifiers read.

An entry with a mark is appended at most once: one script in the flag's slot sets the mark in
the flag's mark hash and appends only if it was new, so a hold is not repeated every tick and
a restarted controller does not repeat it either. The same script publishes the flag's key on
``keys.event_appends`` after the append, as a flag write publishes on ``keys.changes`` after
its audit entry: a notifier wakes on either and reads that flag's streams. Reads are per flag
(XRANGE on one key), never one multi-key XREAD: the streams of different flags live in
different Cluster slots.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rollout.storage.codec import dumps
from rollout.storage.errors import storage_call
from rollout.storage.keys import Keys

EVENTS_MAX_LEN = 10_000  # per flag; approximate trimming keeps XADD O(1)
MARKS_TTL_MS = 30 * 86_400_000  # marks of stages long gone expire

# KEYS: 1 event stream, 2 mark hash. ARGV: 1 mark ('' for none), 2 stream max length, 3 marks'
# lifetime (ms), 4 channel, 5 message, 6... the entry's fields as name, value pairs.
_APPEND_ONCE = """
if ARGV[1] ~= '' then
  if redis.call('HSETNX', KEYS[2], ARGV[1], 1) == 0 then return false end
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 6))
redis.call('PUBLISH', ARGV[4], ARGV[5])
return id
"""

Entry = tuple[str, dict[str, str]]


class EventStore:
    def __init__(self, client: Any, keys: Keys) -> None:
        self.redis: Any = client
        self.keys = keys
        self._append = client.register_script(_APPEND_ONCE)

    @storage_call
    def append(self, key: str, mark: str | None, fields: Mapping[str, str]) -> str | None:
        """Append one entry to ``key``'s stream; None when ``mark`` was already used."""
        flat = [part for item in fields.items() for part in item]
        entry_id = self._append(
            keys=[self.keys.events(key), self.keys.event_marks(key)],
            args=[
                mark or "",
                EVENTS_MAX_LEN,
                MARKS_TTL_MS,
                self.keys.event_appends,
                dumps({"key": key}),
                *flat,
            ],
        )
        return None if entry_id is None else str(entry_id)

    @storage_call
    def read(
        self, key: str, audit_after: str, events_after: str, count: int
    ) -> tuple[list[Entry], list[Entry]]:
        """Entries after the two positions (exclusive), of the audit and of the event stream."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.xrange(self.keys.audit(key), min=f"({audit_after}", count=count)
        pipe.xrange(self.keys.events(key), min=f"({events_after}", count=count)
        audit, events = pipe.execute()
        return list(audit), list(events)

    @storage_call
    def read_many(
        self, requests: list[tuple[str, str, str]], count: int
    ) -> list[tuple[list[Entry], list[Entry]]]:
        """``read`` for many flags in one pipeline (per-key commands, so a Cluster client
        sends each to its node; never one multi-key XREAD)."""
        pipe = self.redis.pipeline(transaction=False)
        for key, audit_after, events_after in requests:
            pipe.xrange(self.keys.audit(key), min=f"({audit_after}", count=count)
            pipe.xrange(self.keys.events(key), min=f"({events_after}", count=count)
        replies = pipe.execute() if requests else []
        return [(list(replies[2 * i]), list(replies[2 * i + 1])) for i in range(len(requests))]

    @storage_call
    def recent_events(self, key: str, before: str, count: int = 50) -> list[Entry]:
        """The event stream's entries up to ``before`` (inclusive), newest first."""
        return list(self.redis.xrevrange(self.keys.events(key), max=before, count=count))

    @storage_call
    def streamed_flags(self) -> list[str]:
        """Every flag that has (or had) an audit stream: the notifier's flags to read."""
        return sorted(self.redis.smembers(self.keys.audited) | self.redis.smembers(self.keys.index))
