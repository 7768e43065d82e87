"""The leader lock on every topology, and its fence: a stale leader cannot act."""

from __future__ import annotations

import time
from typing import Any

import pytest

from rollout.core.errors import LeadershipLost
from rollout.core.model import State
from rollout.services.container import Services
from rollout.wiring import build_controller, build_services
from tests.conftest import make_settings
from tests.controller.test_controller import KEY, outcomes, seed
from tests.fixtures_redis import topology_client
from tests.support import FakeClock

TOPOLOGIES = ["redis-server", "sentinel", "cluster"]


@pytest.fixture(params=TOPOLOGIES)
def topo_services(request: pytest.FixtureRequest, clock: FakeClock) -> Any:
    client = topology_client(request, request.param)
    services = build_services(
        make_settings(leader_ttl=0.3, controller_interval=0.1), redis_client=client, clock=clock
    )
    yield services
    services.close()
    client.close()


def test_one_leader_at_a_time_with_rising_tokens(topo_services: Services) -> None:
    first = build_controller(topo_services, interval=0.1)
    second = build_controller(topo_services, interval=0.1)
    assert first.lead() and not second.lead()
    token = first.lock.token
    assert token > 0 and second.lock.token == 0
    assert first.lead() and first.lock.token == token  # a renewal keeps the token
    first.release()
    assert second.lead() and second.lock.token > token
    assert not first.lead()


def test_a_leader_that_paused_past_its_lock_cannot_act(
    topo_services: Services, clock: FakeClock
) -> None:
    services = topo_services
    seed(services)
    frozen = [0.0]
    stale = build_controller(services, interval=0.1, monotonic=lambda: frozen[0])
    assert stale.lead()
    time.sleep(0.5)  # its lock expires while it "pauses"; its own clock says it still leads
    fresh = build_controller(services, interval=0.1)
    assert fresh.lead() and fresh.lock.token > stale.lock.token
    fresh.tick(clock())  # the new leader's word on the flag: its token is the flag's highest
    outcomes(services, clock, treatment=(1000, 500), control=(9000, 45))  # a kill is due
    assert stale.tick(clock()) == []  # refused by the fence: it steps down, writes nothing
    assert services.flags.get(KEY).state is State.ROLLING
    with pytest.raises(LeadershipLost):
        services.flags.kill(KEY, reason="stale", actor="controller", token=stale.lock.token)
    [outcome] = fresh.tick(clock())
    assert outcome.acted and services.flags.get(KEY).state is State.KILLED
    kills = [e for e in services.flags.audit(KEY) if e["action"] == "kill"]
    assert len(kills) == 1
