"""The real-server fixtures parametrized over every topology (single, Sentinel, Cluster).

A suite's conftest imports them to run its real-server tests on all three; the root fixtures
(``tests/fixtures_redis.py``) stay single-server for the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures_redis import topology_client, topology_url

TOPOLOGIES = ["redis-server", "sentinel", "cluster"]


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
