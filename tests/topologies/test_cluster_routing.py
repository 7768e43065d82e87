"""On a Cluster, a script call costs one command on the flag's node and nothing elsewhere.

redis-py 8's cluster client asks a node ``COMMAND GETKEYS`` for every EVAL/EVALSHA it cannot
route from its own table, and its pipelines ignore the client's routing table: every flush and
every flag write cost one more round trip to one node, the Cluster's busiest. The client we
build (``storage/connection.py``) routes scripts by their KEYS.
"""

from __future__ import annotations

from typing import Any

import pytest

from rollout.storage.keys import Keys
from rollout.storage.metrics import Batch, MetricsStore
from tests.fixtures_redis import topology_client
from tests.support import FakeClock
from tests.topologies.test_replication import services_over


def key_lookups(cluster: Any) -> int:
    """COMMAND calls (GETKEYS among them) on every master so far."""
    total = 0
    for node in cluster.get_primaries():
        stats = cluster.get_redis_connection(node).info("commandstats")
        total += int(stats.get("cmdstat_command", {}).get("calls", 0))
        total += int(stats.get("cmdstat_command|getkeys", {}).get("calls", 0))
    return total


@pytest.fixture
def cluster_client(request: pytest.FixtureRequest) -> Any:
    client = topology_client(request, "cluster")
    yield client
    client.close()


def test_flushes_and_writes_route_scripts_without_asking_a_node(
    cluster_client: Any, clock: FakeClock
) -> None:
    services = services_over(cluster_client, clock)
    before = key_lookups(cluster_client)
    store = MetricsStore(cluster_client, Keys("rollout"), 3600)
    for number in range(1, 6):
        batch = Batch(sequence=number)
        for flag in ("A", "B", "C", "D"):
            batch.tally(flag, 1, "treatment").samples = 3
        store.flush(batch, now=1_000_000.0, process="p1")  # a pipeline of EVALSHA
    services.flags.create("F", actor="t", stages=[{"percent": 10}])  # the write script
    services.flags.kill("F", reason="bad", actor="t")
    assert key_lookups(cluster_client) == before
    evidence = store.evidence("A", 1, now=1_000_000.0, windows_ms=[10_000])
    assert evidence.stage.treatment.samples == 15  # and they did land, on the flag's node
