"""Fixtures of the SDK tests: a server of the test's own for those that stop and start it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rollout.storage.connection import client_for_url
from rollout.storage.redis_process import RedisProcess
from rollout.wiring import Services, build_services
from tests.conftest import make_settings
from tests.support import FakeClock


@pytest.fixture
def own_services(own_redis_server: RedisProcess, clock: FakeClock) -> Iterator[Services]:
    """Services writing to ``own_redis_server``."""
    redis = client_for_url(own_redis_server.url)
    yield build_services(make_settings(), redis_client=redis, clock=clock)
    redis.close()
