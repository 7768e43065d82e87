"""The key layout, brought up to date at start by every server-side process (idempotently).

Layout 1 kept the global keys under bare names (``rollout:flags``, ``rollout:audit:seq``...),
each in a slot of its own, which a Cluster cannot combine. Layout 2 puts them under one hash tag
(``keys.global_key``). A flag's own keys did not change. Migrating merges each old key into its
new name with operations that change nothing when repeated (set union, fields only where
absent, the larger sequence number), then deletes the old key, so a process that dies halfway,
or two that migrate at once, leave the same result as one clean run. The leader lock is simply
dropped: a running controller takes the new one at its next tick.

Issue 11's triggers, destinations and notifier state sat under a tag of their own,
``{~global}``: the triggers and destinations hashes are merged like the other hashes, the
notifier's per-destination cursors and stats (found by SCAN) too, and its leader lock is dropped
like the controller's. Its per-second trigger rate counters expire within seconds: left alone.
"""

from __future__ import annotations

from typing import Any

from rollout.storage.errors import storage_call
from rollout.storage.flags import FlagStore
from rollout.storage.keys import Keys

LAYOUT = "2"


@storage_call
def migrate(client: Any, keys: Keys) -> int:
    """Bring the layout to ``LAYOUT``; how many old keys were moved (0 when already there)."""
    if client.get(keys.layout) == LAYOUT:
        return 0
    moved = 0
    for old, new in keys.legacy_globals().items():
        kind = client.type(old)
        if kind == "none":
            continue
        if new in (keys.leader, keys.notifier_leader):
            pass
        elif kind == "set":
            members = client.smembers(old)
            if members:
                client.sadd(new, *members)
        elif kind == "zset":
            rows = client.zrange(old, 0, -1, withscores=True)
            if rows:
                client.zadd(new, dict(rows), nx=True)
        elif kind == "hash":
            for name, value in client.hgetall(old).items():
                client.hsetnx(new, name, value)
        elif kind == "string" and new == keys.audit_sequence:
            value = int(client.get(old) or 0)
            if int(client.get(new) or 0) < value:
                client.set(new, value)
        client.delete(old)
        moved += 1
    pattern, old_prefix = keys.legacy_notifier_keys()
    for old in list(client.scan_iter(match=pattern, count=500)):
        if client.type(old) == "hash":
            new = keys.global_key(old[len(old_prefix) :])
            for name, value in client.hgetall(old).items():
                client.hsetnx(new, name, value)
        client.delete(old)
        moved += 1
    FlagStore(client, keys).reconcile_index()
    client.set(keys.layout, LAYOUT)
    return moved
