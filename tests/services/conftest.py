"""The services suite runs against fakeredis and every real topology: single, Sentinel, Cluster."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest

from tests.fixtures_redis import topology_client
from tests.topology_fixtures import TOPOLOGIES
from tests.topology_fixtures import real_redis as real_redis  # fixtures, offered here
from tests.topology_fixtures import real_url as real_url
from tests.topology_fixtures import topology as topology


@pytest.fixture(params=["fakeredis", *TOPOLOGIES])
def any_redis(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "fakeredis":
        yield fakeredis.FakeRedis(decode_responses=True)
        return
    client = topology_client(request, request.param)
    yield client
    client.close()
