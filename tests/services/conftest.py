"""The services suite runs against fakeredis and every real topology: single, Sentinel, Cluster."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest

from tests.fixtures_redis import topology_client, topology_url

TOPOLOGIES = ["redis-server", "sentinel", "cluster"]


@pytest.fixture(params=["fakeredis", *TOPOLOGIES])
def any_redis(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "fakeredis":
        yield fakeredis.FakeRedis(decode_responses=True)
        return
    client = topology_client(request, request.param)
    yield client
    client.close()


@pytest.fixture(params=TOPOLOGIES)
def topology(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def real_redis(request: pytest.FixtureRequest, topology: str) -> Iterator[Any]:
    client = topology_client(request, topology)
    yield client
    client.close()


@pytest.fixture
def real_url(request: pytest.FixtureRequest, topology: str, real_redis: Any) -> str:
    """The URL of ``real_redis``'s topology, for SDK clients of the same data."""
    return topology_url(request, topology)
