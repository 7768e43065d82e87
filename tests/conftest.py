from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
from hypothesis import settings as hypothesis_settings

from rollout.services.container import Services
from rollout.settings import Settings
from rollout.storage.connection import client_for_url
from rollout.storage.redis_process import RedisProcess
from rollout.wiring import build_services
from tests.support import FakeClock

pytest_plugins = ["tests.fixtures_redis", "pytester"]  # pytester: tests of the fixtures

# Hypothesis fails an example that takes over 200 ms by default; on a loaded 2-core machine a
# single example (a Redis round trip, a GC pause) can take that long without any bug. Speed is
# measured in bench/, never asserted here. Loaded before any test module is imported, so every
# @settings(...) in the suite inherits it.
hypothesis_settings.register_profile("rollout", deadline=None)
hypothesis_settings.load_profile("rollout")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: Any) -> None:
    """No test reads the developer's ROLLOUT_* variables or touches their data dir."""
    import os

    for name in list(os.environ):
        if name.startswith("ROLLOUT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg")))
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))  # no stray .env is read


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def real_redis(redis_server_flushed: RedisProcess) -> Iterator[Any]:
    client = client_for_url(redis_server_flushed.url)
    yield client
    client.close()


@pytest.fixture(params=["fakeredis", "redis-server"])
def any_redis(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The store contract runs against both backends."""
    if request.param == "fakeredis":
        yield fakeredis.FakeRedis(decode_responses=True)
    else:
        yield request.getfixturevalue("real_redis")


def make_settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def services(any_redis: Any, clock: FakeClock) -> Services:
    return build_services(make_settings(), redis_client=any_redis, clock=clock)


@pytest.fixture
def real_services(real_redis: Any, clock: FakeClock) -> Services:
    return build_services(make_settings(), redis_client=real_redis, clock=clock)
