"""The composition root: ``Services.close()`` gives back exactly what the wiring took.

Counted from the server's side (CLIENT LIST), since a redis-py client quietly reconnects on
its next command and so cannot say by itself whether it was closed. On a server of its own:
clients other tests left behind on the shared one would blur the count.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rollout.storage.connection import client_for_url
from rollout.storage.redis_process import RedisProcess, free_port
from rollout.wiring import build_services
from tests.conftest import make_settings
from tests.support import wait_until


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisProcess]:
    process = RedisProcess(tmp_path, port=free_port(), appendonly=False)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def observer(server: RedisProcess) -> Iterator[Any]:
    client = client_for_url(server.url)
    yield client
    client.close()


def others(observer: Any) -> int:
    """Connections to the server other than the observer's own."""
    me = observer.client_id()
    return sum(1 for client in observer.client_list() if int(client["id"]) != me)


def test_close_stops_the_read_cache_and_closes_the_pool_it_opened(
    server: RedisProcess, observer: Any
) -> None:
    services = build_services(make_settings(redis_url=server.url))
    services.flags.create("F", actor="t")
    services.reads.get("F")  # starts the cache's channel follower: a subscribed connection
    assert wait_until(lambda: others(observer) >= 2, timeout=10)
    services.close()
    assert wait_until(lambda: others(observer) == 0, timeout=10)


def test_close_leaves_a_client_passed_in_open(server: RedisProcess, observer: Any) -> None:
    mine = client_for_url(server.url)
    try:
        services = build_services(make_settings(), redis_client=mine)
        services.flags.create("F", actor="t")
        assert others(observer) == 1
        services.close()
        assert others(observer) == 1  # still connected: the caller closes its own client
    finally:
        mine.close()
