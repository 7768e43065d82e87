"""Real redis-servers for tests (load with ``pytest_plugins``).

``redis_server`` is a started :class:`RedisProcess` on a free TCP port in a temp dir, shared by
the whole session and stopped at its end. Flushing between uses is the caller's job;
``redis_server_flushed`` does that. A test that stops or restarts Redis takes ``own_redis_server``
instead: a server of its own, so no other test can find the shared one down or on a port that
someone else took meanwhile. ``redis_server_flushed`` fails a test that leaves the shared server
stopped (at its teardown), and every later test that wants it (at setup): restarting it quietly
would hide the test that broke the rule, and the tests that ran meanwhile against no server.

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
from typing import Any

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


SHARED_STOPPED = "the shared redis-server is not running"


def require_running(server: RedisProcess, when: str) -> None:
    """Fail the current test, loudly, when the shared ``server`` is down."""
    if not server.running:
        pytest.fail(
            f"{SHARED_STOPPED} {when}: a test that stops Redis must take own_redis_server",
            pytrace=False,
        )


@pytest.fixture
def redis_server_flushed(redis_server: RedisProcess) -> Iterator[RedisProcess]:
    require_running(redis_server, "before this test (an earlier test stopped it)")
    client = redis_server.client()
    try:
        client.flushall()
    finally:
        client.close()
    yield redis_server
    require_running(redis_server, "after this test (this test stopped it)")


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


# -- Sentinel and Cluster (tests/redis_groups.py) --------------------------------------------


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[Any]:
    """Three masters with a replica each, shared by the session; tests flush, never kill it."""
    yield from _started("ClusterGroup", "ro-cluster-")


@pytest.fixture(scope="session")
def sentinel_group() -> Iterator[Any]:
    """A master, a replica and three sentinels, shared by the session; never killed."""
    yield from _started("SentinelGroup", "ro-sentinel-")


@pytest.fixture
def own_cluster() -> Iterator[Any]:
    """A cluster only this test uses: it may SIGKILL a master."""
    yield from _started("ClusterGroup", "ro-own-cluster-")


@pytest.fixture
def own_sentinel() -> Iterator[Any]:
    """A Sentinel group only this test uses: it may SIGKILL the master."""
    yield from _started("SentinelGroup", "ro-own-sentinel-")


@pytest.fixture(scope="module")
def small_cluster() -> Iterator[Any]:
    """Three masters without replicas, for one module that may move slots between them."""
    yield from _started("ClusterGroup", "ro-small-cluster-", replicas=0)


# -- The same over TLS, with an ACL user (tests/tls_servers.py) ------------------------------

TLS_USER, TLS_PASSWORD = "app", "tls-Pa55-w0rd"


@pytest.fixture(scope="session")
def tls_files() -> Iterator[Any]:
    """A throwaway CA and server certificate (``Tls``) with the ACL user of the TLS groups.

    Skips, saying why, where Debian's TLS-built redis-server (or openssl) is missing."""
    from tests.tls_servers import make_certs, tls_unavailable

    reason = tls_unavailable()
    if reason is not None:
        pytest.skip(reason)
    with _short_dir("ro-certs-") as directory:
        yield make_certs(directory).with_user(TLS_USER, TLS_PASSWORD)


@pytest.fixture(scope="module")
def tls_sentinel_group(tls_files: Any) -> Iterator[Any]:
    """A master, a replica and three sentinels, all TLS-only and all behind the ACL user."""
    yield from _started("SentinelGroup", "ro-tls-sentinel-", tls=tls_files)


@pytest.fixture(scope="module")
def tls_cluster(tls_files: Any) -> Iterator[Any]:
    """Three TLS-only masters (``tls-cluster yes``), no replicas, behind the ACL user."""
    yield from _started("ClusterGroup", "ro-tls-cluster-", replicas=0, tls=tls_files)


def _started(kind: str, prefix: str, **options: Any) -> Iterator[Any]:
    """A Sentinel or Cluster group started in a short directory of its own, stopped after."""
    from tests import redis_groups

    with _short_dir(prefix) as directory:
        group = getattr(redis_groups, kind)(directory, **options)
        try:
            group.start()
            yield group
        finally:
            group.stop()


@contextmanager
def _short_dir(prefix: str) -> Iterator[Path]:
    import shutil

    directory = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp" if os.path.isdir("/tmp") else None))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def topology_client(request: pytest.FixtureRequest, name: str) -> Any:
    """A flushed client of the named topology: ``redis-server``, ``sentinel`` or ``cluster``."""
    from rollout.storage.connection import client_for_url

    if name == "redis-server":
        return client_for_url(request.getfixturevalue("redis_server_flushed").url)
    group = request.getfixturevalue("sentinel_group" if name == "sentinel" else "redis_cluster")
    group.flush()
    return client_for_url(group.url)


def topology_url(request: pytest.FixtureRequest, name: str) -> str:
    if name == "redis-server":
        return str(request.getfixturevalue("redis_server").url)
    group = request.getfixturevalue("sentinel_group" if name == "sentinel" else "redis_cluster")
    return str(group.url)
