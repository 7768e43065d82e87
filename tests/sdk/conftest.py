"""Fixtures of the SDK tests: a server of the test's own for those that stop and start it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from rollout.storage.connection import client_for_url
from rollout.storage.redis_process import RedisProcess
from rollout.wiring import Services, build_services
from tests.conftest import make_settings
from tests.fixtures_redis import topology_client
from tests.support import FakeClock
from tests.topology_fixtures import real_redis as real_redis  # fixtures, offered here
from tests.topology_fixtures import real_url as real_url
from tests.topology_fixtures import topology as topology


@pytest.fixture
def own_services(own_redis_server: RedisProcess, clock: FakeClock) -> Iterator[Services]:
    """Services writing to ``own_redis_server``."""
    redis = client_for_url(own_redis_server.url)
    yield build_services(make_settings(), redis_client=redis, clock=clock)
    redis.close()


@pytest.fixture(params=["fakeredis", "redis-server"])
def any_redis(request: pytest.FixtureRequest) -> Iterator[Any]:
    """As the root fixture, but not through the topology-parametrized ``real_redis``."""
    import fakeredis

    if request.param == "fakeredis":
        yield fakeredis.FakeRedis(decode_responses=True)
        return
    client = topology_client(request, "redis-server")
    yield client
    client.close()
