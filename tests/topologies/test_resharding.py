"""A flag write while its slot is half-way between two masters: the ASK branch.

``CLUSTER SETSLOT <slot> MIGRATING/IMPORTING`` and ``MIGRATE`` by hand, as ``redis-cli --cluster
reshard`` does, on a cluster of this module's own (``small_cluster``: 3 masters, no replicas).

What Redis does meanwhile decides what a write can do. The flag's script names six keys of the
flag's slot, and its write-id marker never exists before the write. So while the slot migrates
the source redirects it (ASK: a key is missing here; or TRYAGAIN on Redis 7 when some keys are
here and some not), and the importing node, asked with ASKING, answers TRYAGAIN (a multi-key
command with a missing key). Nothing can land until the migration ends: the write is retried
(ASK at once to the importing node, then TRYAGAIN with backoff, all with one write id) and
lands, exactly once, when ``SETSLOT ... NODE`` settles the slot. The MOVED case (the slot
moved wholly behind the client's back) is ``test_failover.py``'s resharding test.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from rollout.core.model import State
from rollout.services.container import Services
from rollout.storage.connection import client_for_url
from rollout.wiring import build_services
from tests.conftest import make_settings
from tests.support import FakeClock, wait_for

PLAN = {"stages": [{"percent": 50}, {"percent": 100}]}
FLAG_KEY = "rollout:{F}:flag"


@pytest.fixture
def services(small_cluster: Any, clock: FakeClock) -> Iterator[Services]:
    small_cluster.flush()
    client = client_for_url(small_cluster.url, socket_timeout=1.0)
    made = build_services(make_settings(), redis_client=client, clock=clock)
    yield made
    made.close()
    client.close()


def node_client(port: int) -> redis.Redis:
    return redis.Redis("127.0.0.1", port, socket_timeout=5, decode_responses=True)


def errors(node: redis.Redis, kind: str) -> int:
    """How many ``kind`` replies (ASK, TRYAGAIN, MOVED) the node has sent (INFO errorstats)."""
    return int(node.info("errorstats").get(f"errorstat_{kind}", {}).get("count", 0))


class Migration:
    """One slot from ``source`` to ``target``, begun, some keys moved, then finished."""

    def __init__(self, cluster: Any, key: str) -> None:
        self.slot = key_slot(key.encode())
        owner = cluster.master_of(key)
        masters = cluster.nodes[: cluster.masters]
        self.masters = [node_client(node.port) for node in masters]
        self.source = node_client(owner.port)
        self.target_port = next(node.port for node in masters if node is not owner)
        self.target = node_client(self.target_port)
        self.source_id = self.source.cluster("myid")
        self.target_id = self.target.cluster("myid")

    def begin(self) -> None:
        self.target.execute_command("CLUSTER", "SETSLOT", self.slot, "IMPORTING", self.source_id)
        self.source.execute_command("CLUSTER", "SETSLOT", self.slot, "MIGRATING", self.target_id)

    def keys_at_source(self) -> list[str]:
        return list(self.source.execute_command("CLUSTER", "GETKEYSINSLOT", self.slot, 1000))

    def move(self, names: list[str]) -> None:
        if names:
            self.source.execute_command(
                "MIGRATE", "127.0.0.1", self.target_port, "", 0, 5000, "KEYS", *names
            )

    def finish(self) -> None:
        """Every key to the target, then the slot is the target's on every master (again: a
        failed test's teardown finishes it too, so the next test finds the cluster whole)."""
        self.move(self.keys_at_source())
        for master in self.masters:
            master.execute_command("CLUSTER", "SETSLOT", self.slot, "NODE", self.target_id)


@pytest.fixture
def migration(small_cluster: Any, services: Services) -> Iterator[Migration]:
    services.flags.create("F", actor="t", **PLAN)
    begun = Migration(small_cluster, FLAG_KEY)
    yield begun
    begun.finish()
    small_cluster.wait_healthy()


def audit_of(services: Services) -> list[tuple[str, int]]:
    return [(entry["action"], entry["version"]) for entry in services.flags.audit("F", limit=100)]


@pytest.mark.parametrize("moved", ["none", "some", "all"])
def test_a_write_to_a_migrating_slot_is_retried_and_lands_once(
    services: Services, migration: Migration, moved: str
) -> None:
    rolling = services.flags.advance("F", actor="t")
    migration.begin()
    keys = migration.keys_at_source()
    assert FLAG_KEY in keys
    migration.move({"none": [], "some": [FLAG_KEY], "all": keys}[moved])

    # Reads are right mid-migration, wherever each key sits now (the client follows ASK).
    assert services.flags.get("F") == rolling
    assert audit_of(services) == [("advance", 2), ("create", 1)]
    assert services.flags.keys() == ["F"]

    source_ask, source_retry = errors(migration.source, "ASK"), errors(migration.source, "TRYAGAIN")
    target_retry = errors(migration.target, "TRYAGAIN")
    with ThreadPoolExecutor(1) as pool:
        kill = pool.submit(services.flags.kill, "F", reason="during resharding", actor="oncall")

        def retried_twice() -> bool:
            told = errors(migration.target, "TRYAGAIN") - target_retry
            told += errors(migration.source, "TRYAGAIN") - source_retry
            return told >= 2

        assert wait_for(retried_twice), "the write was never told to try again"
        if moved == "all":  # no key left at the source: ASK, then ASKING + the script there
            assert errors(migration.source, "ASK") > source_ask
            assert errors(migration.target, "TRYAGAIN") - target_retry >= 2
        # The slot is unsettled: nothing has landed, and the write is still trying.
        assert not kill.done(), kill.exception() if kill.done() else None
        assert services.flags.get("F").version == rolling.version
        migration.finish()
        killed = kill.result(timeout=30)

    assert (killed.state, killed.version) == (State.KILLED, rolling.version + 1)
    assert services.flags.get("F") == killed
    assert migration.target.hget(FLAG_KEY, "v") == str(killed.version)  # on the new owner
    assert audit_of(services) == [("kill", 3), ("advance", 2), ("create", 1)]  # exactly once

    # The slot settled: the next write goes straight to the new owner.
    revived = services.flags.revive("F", actor="oncall")
    assert revived.version == killed.version + 1
    assert migration.target.hget(FLAG_KEY, "v") == str(revived.version)
    assert audit_of(services) == [("revive", 4), ("kill", 3), ("advance", 2), ("create", 1)]
    assert services.flags.get("F") == revived
