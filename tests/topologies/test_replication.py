"""WAIT on the writing node: how many replicas a write waits for, and what "pending" looks like."""

from __future__ import annotations

from typing import Any

import pytest

from rollout.api.app import create_app
from rollout.services.container import Services
from rollout.storage.topology import Replication, node_for
from rollout.wiring import build_services
from tests.api.conftest import ADMIN, TOKENS
from tests.cli.conftest import Cli
from tests.conftest import make_settings
from tests.support import FakeClock

PLAN = {"stages": [{"percent": 10}, {"percent": 100}]}


def services_over(client: Any, clock: FakeClock, **settings: Any) -> Services:
    return build_services(make_settings(**TOKENS, **settings), redis_client=client, clock=clock)


@pytest.mark.parametrize("topology", ["sentinel", "cluster"])
def test_a_write_waits_for_the_replica_the_master_reports(
    request: pytest.FixtureRequest, topology: str, clock: FakeClock
) -> None:
    from tests.fixtures_redis import topology_client

    client = topology_client(request, topology)
    try:
        node = node_for(client, "rollout:{F}:flag")
        assert Replication(None, 1.0).needed(node) == 1  # the default follows the master
        services = services_over(client, clock)
        services.flags.replication_pending()  # nothing left over from an earlier test's writes
        services.flags.create("F", actor="t", **PLAN)
        services.flags.kill("F", reason="bad", actor="t")
        assert services.flags.replication_pending() is False  # WAIT saw the replica take it
        # The replica holds the kill now: read it there, not on the master.
        assert replica_holds(request, topology, "F")
    finally:
        client.close()


def replica_holds(request: pytest.FixtureRequest, topology: str, key: str) -> bool:
    import redis

    group = request.getfixturevalue("sentinel_group" if topology == "sentinel" else "redis_cluster")
    name = f"rollout:{{{key}}}:flag"
    nodes = group.data_nodes if topology == "sentinel" else group.nodes
    for node in nodes:
        plain = redis.Redis("127.0.0.1", node.port, decode_responses=True)
        if plain.info("replication")["role"] != "slave":
            continue
        if topology == "cluster":
            plain.execute_command("READONLY")
        try:
            if plain.hget(name, "d") and '"killed"' in str(plain.hget(name, "d")):
                return True
        except redis.ResponseError:  # MOVED: a replica of another master
            continue
    return False


def test_a_single_server_waits_for_nobody(real_redis: Any) -> None:
    assert Replication(None, 1.0).needed(real_redis) == 0


@pytest.fixture
def unreplicated(real_redis: Any, clock: FakeClock) -> Services:
    """A single server told to wait for a replica it does not have, briefly."""
    return services_over(real_redis, clock, write_replicas=1, write_replicas_timeout=0.05)


def test_past_the_timeout_the_write_stands_and_says_pending(unreplicated: Services) -> None:
    unreplicated.flags.replication_pending()  # nothing left over from an earlier test
    flag = unreplicated.flags.create("F", actor="t", **PLAN)
    assert unreplicated.flags.replication_pending() is True
    assert unreplicated.flags.replication_pending() is False  # said once
    assert unreplicated.flags.get("F") == flag


def test_the_api_answers_pending_in_a_header(unreplicated: Services, real_redis: Any) -> None:
    client = create_app(unreplicated).test_client()
    created = client.post("/api/v1/flags", json={"key": "F", **PLAN}, headers=ADMIN)
    assert created.status_code == 201
    assert created.headers.get("Rollout-Replication") == "pending"
    read = client.get("/api/v1/flags/F", headers=ADMIN)
    assert "Rollout-Replication" not in read.headers


def test_the_api_says_nothing_when_the_replicas_confirmed(
    real_redis: Any, clock: FakeClock
) -> None:
    services = services_over(real_redis, clock)
    services.flags.replication_pending()  # nothing left over from an earlier test
    client = create_app(services).test_client()
    created = client.post("/api/v1/flags", json={"key": "F", **PLAN}, headers=ADMIN)
    assert created.status_code == 201 and "Rollout-Replication" not in created.headers


def test_the_cli_warns_on_stderr(unreplicated: Services) -> None:
    result = Cli(unreplicated)("create", "F")
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines() == ["warning: not yet replicated"]
    assert "warning" not in result.stdout
    listed = Cli(unreplicated)("list")
    assert "warning" not in listed.stderr
