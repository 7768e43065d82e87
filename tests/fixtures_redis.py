"""Real redis-servers for tests (load with ``pytest_plugins``).

``redis_server`` is a started :class:`RedisProcess` on a free TCP port in a temp dir, shared by
the whole session and stopped at its end. Flushing between uses is the caller's job;
``redis_server_flushed`` does that. A test that stops or restarts Redis takes ``own_redis_server``
instead: a server of its own, so no other test can find the shared one down or on a port that
someone else took meanwhile. (``redis_server_flushed`` still restarts a shared server that a test
left stopped, for the tests that have not moved yet.)

``dead_redis_url`` and ``closed_port`` are Redis addresses where nothing answers, refused at once
and held so that nothing can start answering there during the test.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from rollout.storage.redis_process import RedisProcess, free_port


@contextmanager
def started_server(directory: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(directory, port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    with started_server(tmp_path_factory.mktemp("redis-server")) as server:
        yield server


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


@pytest.fixture
def own_redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """A started server that only this test uses: it may stop and start it at will."""
    with started_server(tmp_path_factory.mktemp("own-redis")) as server:
        yield server


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that refuses every connection for the length of the test.

    The socket is bound but never listens: the kernel answers a connection with a reset, and
    no other process can bind the port while we hold it (a port found free and then released
    may be taken by anyone; a fixed port such as 9 may have a listener or a firewall that drops).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


@pytest.fixture
def dead_redis_url() -> Iterator[str]:
    """A Redis URL that fails at once: a unix socket path where no file exists.

    Under a short directory of its own: pytest's tmp_path can pass the OS limit on socket
    paths, which would fail for another reason than "nobody there".
    """
    directory = Path(
        tempfile.mkdtemp(prefix="ro-dead-", dir="/tmp" if os.path.isdir("/tmp") else None)
    )
    try:
        yield f"unix://{directory / 'absent.sock'}"
    finally:
        directory.rmdir()
