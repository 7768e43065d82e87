"""A real redis-server for the whole test session (load with ``pytest_plugins``).

``redis_server`` is a started :class:`RedisProcess` on a free TCP port in a temp dir, stopped at
the end of the session. A test may ``stop()`` and ``start()`` it: it comes back on the same port
and URL, with its AOF. Flushing between uses is the caller's job; ``redis_server_flushed`` does
that, and also restarts a server that an earlier test left stopped.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rollout.storage.redis_process import RedisProcess, free_port


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path_factory.mktemp("redis-server"), port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_server_flushed(redis_server: RedisProcess) -> RedisProcess:
    if not redis_server.running:
        redis_server.start()
    client = redis_server.client()
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server
