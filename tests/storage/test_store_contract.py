"""One storage contract, run against fakeredis and against a real redis-server."""

from __future__ import annotations

import re
from typing import Any

import pytest

from rollout.core.errors import ConcurrentUpdate, FlagExists, FlagNotFound, MalformedFlag
from rollout.core.model import Flag, State, Status, new_flag
from rollout.storage.feed import Change, ChangeFeed, StatusChange
from rollout.storage.flags import AuditEntry, FlagStore
from rollout.storage.keys import Keys
from rollout.storage.snapshots import SnapshotStore

KEYS = Keys("rt")


@pytest.fixture
def store(any_redis: Any) -> FlagStore:
    return FlagStore(any_redis, KEYS)


def entry(action: str = "test", at: int = 1000) -> AuditEntry:
    return AuditEntry(actor="tester", action=action, reason="why not", at=at)


def create(store: FlagStore, key: str = "F") -> Flag:
    stored = store.write(
        new_flag(key, 1000), key=key, expected_version=0, audit=entry("create"), before=None
    )
    assert stored is not None
    return stored


def test_create_get_list_delete(store: FlagStore) -> None:
    flag = create(store)
    assert flag.version == 1
    assert store.get("F") == flag
    create(store, "G")
    assert store.keys_list() == ["F", "G"]
    assert sorted(store.load_all()[0]) == ["F", "G"]
    store.write(None, key="F", expected_version=1, audit=entry("delete"), before=flag)
    with pytest.raises(FlagNotFound):
        store.get("F")
    assert store.keys_list() == ["G"]


def test_create_twice_is_refused(store: FlagStore) -> None:
    create(store)
    with pytest.raises(FlagExists):
        create(store)
    assert len(store.audit("F")) == 1


def test_stale_write_is_refused_and_writes_nothing(store: FlagStore) -> None:
    flag = create(store)
    newer = store.write(
        flag.with_changes(description="a"), key="F", expected_version=1, audit=entry(), before=flag
    )
    assert newer is not None and newer.version == 2
    with pytest.raises(ConcurrentUpdate):
        store.write(
            flag.with_changes(description="b"),
            key="F",
            expected_version=1,
            audit=entry(),
            before=flag,
        )
    assert store.get("F").description == "a"
    assert [e["version"] for e in store.audit("F")] == [2, 1]


def test_update_of_a_missing_flag_is_not_found(store: FlagStore) -> None:
    with pytest.raises(FlagNotFound):
        store.write(new_flag("F", 0), key="F", expected_version=3, audit=entry(), before=None)


def test_versions_never_repeat_across_delete_and_create(store: FlagStore) -> None:
    flag = create(store)
    store.write(
        flag.with_changes(description="x"), key="F", expected_version=1, audit=entry(), before=flag
    )
    store.write(None, key="F", expected_version=2, audit=entry("delete"), before=None)
    again = create(store)
    assert again.version == 4


def test_audit_entries_have_every_field(store: FlagStore) -> None:
    flag = create(store)
    store.write(
        flag.with_changes(state=State.ROLLING),
        key="F",
        expected_version=1,
        audit=AuditEntry("ops", "advance", None, 2000),
        before=flag,
    )
    newest, oldest = store.audit("F")
    fields = {"id", "flag", "actor", "action", "reason", "before", "after", "at", "version", "seq"}
    assert set(newest) == set(oldest) == fields
    # The write's version, and the global sequence that orders all flags' entries (fresh Redis).
    assert (newest["version"], newest["seq"], oldest["version"], oldest["seq"]) == (2, 2, 1, 1)
    assert re.fullmatch(r"\d+-\d+", newest["id"])  # the stream's own id: the server's clock
    assert (newest["flag"], newest["actor"], newest["action"]) == ("F", "ops", "advance")
    assert newest["reason"] is None and oldest["reason"] == "why not"
    assert newest["before"]["state"] == "draft" and newest["after"]["state"] == "rolling"
    assert oldest["before"] is None
    assert newest["at"] == "1970-01-01T00:00:02.000Z"


def test_audit_without_key_merges_newest_first(store: FlagStore) -> None:
    create(store, "A")
    create(store, "B")
    create(store, "C")
    merged = store.audit(limit=2)
    assert [e["flag"] for e in merged] == ["C", "B"]


def test_every_write_is_published(store: FlagStore, any_redis: Any) -> None:
    feed = ChangeFeed(any_redis, KEYS)
    feed.subscribe()
    flag = create(store)
    store.write(None, key="F", expected_version=flag.version, audit=entry(), before=flag)
    created = feed.next_change(timeout=2)
    deleted = feed.next_change(timeout=2)
    feed.close()
    assert created is not None and (created.key, created.version) == ("F", 1)
    assert created.flag is not None and created.flag["key"] == "F"
    assert deleted is not None and (deleted.version, deleted.flag) == (2, None)


def test_a_write_that_sets_the_status_publishes_it_too(store: FlagStore, any_redis: Any) -> None:
    """Restore sets the word with the value: followers hear both, in that order."""
    flag = create(store)
    feed = ChangeFeed(any_redis, KEYS, statuses=True)
    feed.subscribe()
    word = Status("hold", "restored", 5000)
    set_ = store.write(
        flag.with_changes(status=word),
        key="F",
        expected_version=1,
        audit=entry(),
        before=flag,
        write_status=True,
    )
    assert set_ is not None
    store.write(set_, key="F", expected_version=2, audit=entry(), before=set_)  # word kept
    store.write(
        set_.with_changes(status=None),
        key="F",
        expected_version=3,
        audit=entry(),
        before=set_,
        write_status=True,
    )
    heard = [feed.next_change(timeout=2) for _ in range(5)]
    assert feed.next_change(timeout=0.2) is None  # nothing more: a kept word is not sent
    feed.close()
    told = [("value", h.version) if isinstance(h, Change) else ("status", h) for h in heard]
    assert told == [
        ("value", 2),
        ("status", StatusChange("F", word)),
        ("value", 3),
        ("value", 4),
        ("status", StatusChange("F", None)),  # cleared
    ]


def test_malformed_value_names_the_key_and_spares_the_others(
    store: FlagStore, any_redis: Any
) -> None:
    create(store, "GOOD")
    create(store, "BAD")
    any_redis.hset(KEYS.flag("BAD"), "d", '{"key": "BAD", "state": "exploded"}')
    with pytest.raises(MalformedFlag, match="BAD"):
        store.get("BAD")
    flags, problems = store.load_all()
    assert list(flags) == ["GOOD"]
    assert [p.key for p in problems] == ["BAD"]


def test_status_lives_beside_the_flag(store: FlagStore) -> None:
    flag = create(store)
    store.set_status("F", Status("hold", "error_rate 6%", 5000))
    again = store.get("F")
    assert again.version == flag.version
    assert again.status == Status("hold", "error_rate 6%", 5000)
    assert len(store.audit("F")) == 1


def test_snapshots_are_kept_by_id(any_redis: Any) -> None:
    snapshots = SnapshotStore(any_redis, KEYS)
    snapshots.save("s1", {"flags": []}, 1000)
    snapshots.save("s2", {"flags": [1]}, 2000)
    assert snapshots.get("s2") == {"flags": [1]}
    assert snapshots.get("nope") is None
    assert snapshots.newest() == [("s2", 2000), ("s1", 1000)]
    assert snapshots.newest(1) == [("s2", 2000)]


def test_every_key_carries_the_prefix_and_hash_tag(store: FlagStore, any_redis: Any) -> None:
    create(store, "PROMPT_IMPROVER_ENABLED")
    names = sorted(any_redis.scan_iter("*"))
    assert names and all(n.startswith("rt:") for n in names)
    assert "rt:{PROMPT_IMPROVER_ENABLED}:flag" in names
