"""Failovers on real servers: SIGKILL the master, a replica takes over, nothing is lost.

Each test has a group of its own (``own_sentinel``, ``own_cluster``): it kills a node.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from rollout.core.model import State
from rollout.sdk.client import RolloutClient
from rollout.services.container import Services
from rollout.storage.connection import client_for_url
from rollout.wiring import build_services
from tests.conftest import make_settings
from tests.redis_groups import sigkill
from tests.support import FakeClock, wait_for

PLAN = {"stages": [{"percent": 50}, {"percent": 100}]}
FLAG_KEY = "rollout:{F}:flag"
TOPOLOGIES = ["sentinel", "cluster"]

pytestmark = pytest.mark.slow


def group_of(request: pytest.FixtureRequest, topology: str) -> Any:
    return request.getfixturevalue("own_sentinel" if topology == "sentinel" else "own_cluster")


def services_at(url: str, clock: FakeClock) -> Services:
    client = client_for_url(url, socket_timeout=1.0)
    services = build_services(make_settings(), redis_client=client, clock=clock)
    services.on_close = client.close  # type: ignore[misc]
    return services


def master_of_flag(group: Any, topology: str) -> Any:
    return group.current_master() if topology == "sentinel" else group.master_of(FLAG_KEY)


def wait_failover(group: Any, topology: str, dead: Any) -> Any:
    if topology == "sentinel":
        return group.wait_failover(dead)
    return group.wait_failover(dead, FLAG_KEY)


def kills_in_audit(services: Services) -> int:
    return [entry["action"] for entry in services.flags.audit("F", limit=100)].count("kill")


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_an_acknowledged_kill_survives_a_sigkill_of_the_master(
    request: pytest.FixtureRequest, topology: str, clock: FakeClock
) -> None:
    group = group_of(request, topology)
    services = services_at(group.url, clock)
    services.flags.replication_pending()  # nothing left over from an earlier test's writes
    try:
        services.flags.create("F", actor="t", **PLAN)
        services.flags.advance("F", actor="t")
        killed = services.flags.kill("F", reason="bad", actor="t")
        assert services.flags.replication_pending() is False  # acknowledged by a replica
        dead = master_of_flag(group, topology)
        sigkill(dead)
        wait_failover(group, topology, dead)
        fresh = services_at(group.url, clock)
        try:
            after = fresh.flags.get("F")
            assert (after.state, after.version) == (State.KILLED, killed.version)
            assert kills_in_audit(fresh) == 1
        finally:
            fresh.close()
        # The client that wrote before the failover follows the new master by itself.
        revived = services.flags.revive("F", actor="t")
        assert revived.version == killed.version + 1
    finally:
        services.close()


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_a_kill_during_a_failover_lands_and_reaches_every_sdk(
    request: pytest.FixtureRequest, topology: str, clock: FakeClock
) -> None:
    group = group_of(request, topology)
    services = services_at(group.url, clock)
    sdks = [
        RolloutClient(group.url, environ={}, socket_timeout=0.5, resync_interval=1.0)
        for _ in range(2)
    ]
    stop = threading.Event()
    failures: list[BaseException] = []
    answers = {"count": 0}

    def traffic(sdk: RolloutClient) -> None:
        handle = sdk.flag("F")
        i = 0
        while not stop.is_set():
            try:
                handle.is_enabled(f"user-{i % 500}")
                answers["count"] += 1
            except BaseException as error:  # nothing may reach the caller
                failures.append(error)
            i += 1
            time.sleep(0.001)

    try:
        services.flags.create("F", actor="t", **PLAN)
        rolling = services.flags.advance("F", actor="t")
        for sdk in sdks:
            assert wait_for(lambda s=sdk: known_version(s) >= rolling.version)
        threads = [threading.Thread(target=traffic, args=(sdk,)) for sdk in sdks]
        for thread in threads:
            thread.start()
        dead = master_of_flag(group, topology)
        sigkill(dead)
        started = time.monotonic()
        killed = services.flags.kill("F", reason="during failover", actor="oncall")
        landed = time.monotonic() - started
        assert landed < 30, f"the kill took {landed:.1f}s"
        for sdk in sdks:
            assert wait_for(lambda s=sdk: known_version(s) >= killed.version, 30), "SDK stale"
            assert not any(sdk.flag("F").is_enabled(f"user-{i}") for i in range(200))
        stop.set()
        for thread in threads:
            thread.join(10)
        assert failures == [] and answers["count"] > 0
        assert kills_in_audit(services) == 1
        versions = [e["version"] for e in services.flags.audit("F", limit=100)]
        assert len(versions) == len(set(versions))  # no duplicate audit entries
    finally:
        stop.set()
        for sdk in sdks:
            sdk.close()
        services.close()


def known_version(sdk: RolloutClient) -> int:
    flag = sdk.known_flags().get("F")
    return 0 if flag is None else flag.version


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_the_controller_and_the_sdk_flusher_carry_on_after_a_failover(
    request: pytest.FixtureRequest, topology: str, clock: FakeClock
) -> None:
    """No restart: the running controller keeps its lock and acts on evidence an SDK flushed
    after the master died; what the SDK recorded during the outage was kept and sent."""
    from rollout.wiring import build_controller
    from tests.controller.test_controller import KEY, seed
    from tests.evidence import users

    group = group_of(request, topology)
    client = client_for_url(group.url, socket_timeout=1.0)
    settings = make_settings(leader_ttl=3.0, controller_interval=0.2)
    services = build_services(settings, redis_client=client, clock=clock)
    sdk = RolloutClient(group.url, environ={}, socket_timeout=0.5, flush_interval=60, clock=clock)
    controller = build_controller(services, interval=0.2)
    runner = threading.Thread(target=controller.run)
    try:
        seed(services, bake="1h")
        flag = services.flags.get(KEY)
        assert wait_for(lambda: known_version(sdk) >= flag.version)
        runner.start()
        assert wait_for(lambda: services.flags.get(KEY).status is not None), "never ticked"
        dead = master_of_flag(group, topology)
        sigkill(dead)
        handle = sdk.flag(KEY)
        for user in users(flag, treatment=True, n=300):  # failing treatment, during the outage
            handle.record(user, ok=False, duration_ms=20, error_type="Boom")
        for user in users(flag, treatment=False, n=300):
            handle.record(user, ok=True, duration_ms=20)
        sdk.flush()  # may fail while no master answers: the deltas stay buffered
        wait_failover(group, topology, dead)
        sdk.flush()
        assert wait_for(lambda: services.flags.get(KEY).state is State.KILLED, 30), (
            "the controller never acted after the failover"
        )
        evidence = services.gates.evidence(services.flags.get(KEY))
        assert evidence.stage.treatment.samples == 300  # sent once, none lost or doubled
        kills = [e for e in services.flags.audit(KEY) if e["action"] == "kill"]
        assert len(kills) == 1 and kills[0]["actor"] == "controller"
    finally:
        controller.stop.set()
        if runner.is_alive():
            runner.join(15)
        sdk.close()
        services.close()
        client.close()


def test_a_write_during_a_resharding_follows_moved_and_applies_once(
    own_cluster: Any, clock: FakeClock
) -> None:
    """The flag's slot moves to another master behind the client's back: the write meets
    MOVED on the old node, re-reads the slot map, lands on the new one, once."""
    import redis
    from redis.crc import key_slot

    # The services' own client, built here so the test can send through its slot map.
    cluster_client = client_for_url(own_cluster.url, socket_timeout=1.0)
    services = build_services(make_settings(), redis_client=cluster_client, clock=clock)
    services.on_close = cluster_client.close  # type: ignore[misc]
    try:
        services.flags.create("F", actor="t", **PLAN)
        rolling = services.flags.advance("F", actor="t")
        slot = key_slot(FLAG_KEY.encode())
        source = own_cluster.master_of(FLAG_KEY)
        masters = own_cluster.nodes[: own_cluster.masters]
        target = next(node for node in masters if node is not source)
        src = redis.Redis("127.0.0.1", source.port, decode_responses=True)
        dst = redis.Redis("127.0.0.1", target.port, decode_responses=True)
        src_id, dst_id = src.cluster("myid"), dst.cluster("myid")
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        names = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000)
        assert names
        src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *names)
        for node in masters:
            plain = redis.Redis("127.0.0.1", node.port)
            plain.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        # The client's slot map still names the old owner: the script path meets MOVED.
        from rollout.storage.topology import on_flag_node

        sent: list[int] = []

        def send(pipe: Any) -> None:
            sent.append(pipe.connection_pool.connection_kwargs["port"])
            pipe.hget(FLAG_KEY, "v")

        reply = on_flag_node(cluster_client, FLAG_KEY, send, None)
        assert sent == [source.port, target.port] and reply.reply == str(rolling.version)
        killed = services.flags.kill("F", reason="during resharding", actor="oncall")
        assert killed.version == rolling.version + 1
        assert dst.hget(FLAG_KEY, "v") == str(killed.version)  # on the new owner
        assert kills_in_audit(services) == 1
        versions = [e["version"] for e in services.flags.audit("F", limit=100)]
        assert versions == sorted(set(versions), reverse=True)
    finally:
        services.close()
