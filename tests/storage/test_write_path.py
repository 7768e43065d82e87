"""The one write path: a script in the flag's slot, write ids, global keys, migration, fencing."""

from __future__ import annotations

from typing import Any

import pytest

from rollout.core.errors import LeadershipLost
from rollout.core.model import Flag, Status, new_flag
from rollout.storage.flags import AuditEntry, FlagStore
from rollout.storage.keys import Keys
from rollout.storage.migrate import migrate

KEYS = Keys("rt")


def entry(action: str = "test") -> AuditEntry:
    return AuditEntry(actor="tester", action=action, reason=None, at=1000)


@pytest.fixture
def store(any_redis: Any) -> FlagStore:
    return FlagStore(any_redis, KEYS)


def create(store: FlagStore, key: str = "F", **kw: Any) -> Flag:
    stored = store.write(
        new_flag(key, 1000), key=key, expected_version=0, audit=entry("create"), before=None, **kw
    )
    assert stored is not None
    return stored


def test_a_write_sent_twice_with_one_id_applies_once(store: FlagStore) -> None:
    flag = create(store)
    changed = flag.with_changes(description="once")
    first = store.write(
        changed, key="F", expected_version=1, audit=entry(), before=flag, write_id="w-1"
    )
    again = store.write(
        changed, key="F", expected_version=1, audit=entry(), before=flag, write_id="w-1"
    )
    assert first is not None and again is not None
    assert first.version == again.version == 2
    assert store.get("F").version == 2
    assert [e["version"] for e in store.audit("F")] == [2, 1]


def test_a_lost_reply_is_retried_and_applied_once(
    real_redis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The script runs, then the connection drops before its reply: the retry finds the id."""
    import redis

    store = FlagStore(real_redis, KEYS)
    flag = create(store)
    lost = {"count": 0}
    real_execute = redis.client.Pipeline.execute

    def losing_execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        is_write = any(cmd[0][0] == "EVAL" for cmd in self.command_stack)
        replies = real_execute(self, *args, **kwargs)
        if is_write and lost["count"] == 0:
            lost["count"] += 1
            raise redis.exceptions.ConnectionError("reply lost")
        return replies

    monkeypatch.setattr(redis.client.Pipeline, "execute", losing_execute)
    stored = store.write(
        flag.with_changes(description="x"), key="F", expected_version=1, audit=entry(), before=flag
    )
    monkeypatch.undo()
    assert lost["count"] == 1
    assert stored is not None and stored.version == 2
    assert [e["version"] for e in store.audit("F")] == [2, 1]


def test_global_keys_share_one_tag_and_flags_their_own(store: FlagStore, any_redis: Any) -> None:
    flag = create(store, "A")
    store.set_status("A", Status("hold", "why", 5))
    store.write(None, key="A", expected_version=flag.version, audit=entry(), before=flag)
    create(store, "B")
    for name in any_redis.scan_iter("*"):
        tag = name[name.index("{") + 1 : name.index("}")]
        assert tag in ("@rt", "A", "B"), name
    assert {KEYS.index, KEYS.audited, KEYS.audit_sequence} <= set(any_redis.scan_iter("*"))


def test_the_index_is_a_hint_readers_check(store: FlagStore, any_redis: Any) -> None:
    create(store, "A")
    create(store, "B")
    any_redis.sadd(KEYS.index, "GHOST")  # a hint left by a create that never landed
    any_redis.srem(KEYS.index, "B")  # a crash between a create and its index update
    assert store.keys_list() == ["A"]
    assert sorted(store.load_all()[0]) == ["A"]
    assert store.reconcile_index() == 1
    assert store.keys_list() == ["A", "B"] and sorted(store.load_all()[0]) == ["A", "B"]


def test_a_delete_racing_a_create_keeps_the_new_flag_listed(store: FlagStore) -> None:
    flag = create(store)
    store.write(None, key="F", expected_version=1, audit=entry(), before=flag)
    create(store)
    store._after("F", exists=False)  # the delete's late index step lands after the create
    assert store.keys_list() == ["F"]


def test_audit_sequence_orders_every_flag(store: FlagStore) -> None:
    for key in ("C", "A", "B"):
        create(store, key)
    merged = store.audit(limit=10)
    assert [e["flag"] for e in merged] == ["B", "A", "C"]
    assert [e["seq"] for e in merged] == sorted((e["seq"] for e in merged), reverse=True)


def test_a_lower_leader_token_is_refused(store: FlagStore) -> None:
    flag = create(store, token=5)
    with pytest.raises(LeadershipLost):
        store.write(
            flag.with_changes(description="old leader"),
            key="F",
            expected_version=1,
            audit=entry(),
            before=flag,
            token=4,
        )
    with pytest.raises(LeadershipLost):
        store.set_status("F", Status("hold", "old", 1), token=4)
    newer = store.write(
        flag.with_changes(description="same leader"),
        key="F",
        expected_version=1,
        audit=entry(),
        before=flag,
        token=5,
    )
    assert newer is not None and newer.version == 2
    assert store.set_status("F", Status("go", "new", 2), token=6)
    with pytest.raises(LeadershipLost):
        store.set_status("F", Status("hold", "stale", 3), token=5)
    operator = store.write(
        newer.with_changes(description="operator"),
        key="F",
        expected_version=2,
        audit=entry(),
        before=newer,
    )
    assert operator is not None  # an operator's write carries no token and is never fenced
    assert len(store.audit("F")) == 3


def test_migration_moves_the_old_layout_once(any_redis: Any) -> None:
    legacy = FlagStore(any_redis, KEYS)
    create(legacy, "OLD")
    # Layout 1: the same flag keys, the global keys under bare names.
    for new, old in ((KEYS.index, "rt:flags"), (KEYS.audited, "rt:audited")):
        any_redis.sadd(old, *any_redis.smembers(new))
        any_redis.delete(new)
    any_redis.set("rt:audit:seq", 41)
    any_redis.delete(KEYS.audit_sequence)
    any_redis.hset("rt:snapshots", "s1", '{"flags": []}')
    any_redis.zadd("rt:snapshots:by-time", {"s1": 1000})
    any_redis.hset("rt:controller:stats", mapping={"ticks": 7})
    any_redis.set("rt:controller:leader", "old-host:1")
    assert legacy.keys_list() == []
    moved = migrate(any_redis, KEYS)
    assert moved == 7
    assert legacy.keys_list() == ["OLD"]
    assert int(any_redis.get(KEYS.audit_sequence)) == 41
    assert any_redis.hget(KEYS.snapshots, "s1") == '{"flags": []}'
    assert any_redis.zscore(KEYS.snapshot_times, "s1") == 1000
    assert any_redis.hget(KEYS.controller_stats, "ticks") == "7"
    left = [
        n for n in any_redis.scan_iter("*") if n.startswith(("rt:flags", "rt:audit", "rt:snap"))
    ]
    assert left == []
    assert migrate(any_redis, KEYS) == 0  # idempotent: a second start finds nothing to do
    any_redis.delete(KEYS.layout)
    assert migrate(any_redis, KEYS) == 0 and legacy.keys_list() == ["OLD"]
    create(legacy, "NEW")
    assert [e["flag"] for e in legacy.audit(limit=2)] == ["NEW", "OLD"]


def test_migration_moves_issue_11s_globals_from_their_own_tag(any_redis: Any) -> None:
    """Triggers, destinations and the notifier's state once sat under ``{~global}``: they move
    under the one global tag, the notifier's lock is dropped, and a second run changes nothing."""
    old = "rt:{~global}:"
    any_redis.hset(old + "triggers", "t1", '{"id": "t1"}')
    any_redis.hset(old + "notify:destinations", "ops", '{"name": "ops"}')
    any_redis.hset(old + "notify:cursor:ops", "F", "1-0|2-0")
    any_redis.hset(old + "notify:stats:ops", mapping={"delivered": "3"})
    any_redis.set(old + "notifier:leader", "old-host:2")
    any_redis.hset(KEYS.triggers, "t0", '{"id": "t0"}')  # already under the new name: kept
    assert migrate(any_redis, KEYS) == 5
    assert any_redis.hgetall(KEYS.triggers) == {"t0": '{"id": "t0"}', "t1": '{"id": "t1"}'}
    assert any_redis.hget(KEYS.destinations, "ops") == '{"name": "ops"}'
    assert any_redis.hgetall(KEYS.notify_cursors("ops")) == {"F": "1-0|2-0"}
    assert any_redis.hgetall(KEYS.notify_stats("ops")) == {"delivered": "3"}
    assert any_redis.get(KEYS.notifier_leader) is None
    assert [n for n in any_redis.scan_iter("*") if "~global" in n] == []
    assert KEYS.notify_cursors("ops").startswith("rt:{@rt}:")
    any_redis.delete(KEYS.layout)
    assert migrate(any_redis, KEYS) == 0  # idempotent
    assert any_redis.hgetall(KEYS.notify_cursors("ops")) == {"F": "1-0|2-0"}


def test_a_load_with_what_the_reader_holds_decodes_only_what_changed(store: FlagStore) -> None:
    a, b = create(store, "A"), create(store, "B")
    held, _ = store.load_all()
    again, problems = store.load_all(known=held)
    assert again == held and problems == []
    assert again["A"] is held["A"]  # unchanged: the very object the reader holds, not decoded
    store.set_status("A", Status("hold", "why", 5))  # a word: no new version
    newer = store.write(
        b.with_changes(description="x"), key="B", expected_version=1, audit=entry(), before=b
    )
    create(store, "C")
    loaded, _ = store.load_all(known=held)
    assert loaded["A"].status == Status("hold", "why", 5) and loaded["A"].version == a.version
    assert loaded["B"] == newer and loaded["B"] is not held["B"]
    assert sorted(loaded) == ["A", "B", "C"] == sorted(store.load_all()[0])
    store.write(None, key="C", expected_version=1, audit=entry(), before=None)
    assert sorted(store.load_all(known=loaded)[0]) == ["A", "B"]
