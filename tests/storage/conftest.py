"""Fixtures for the embedded-server tests: short temp dirs and launchers that always get stopped."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest

from rollout.storage.embedded import EmbeddedRedis
from tests.fixtures_redis import topology_client


def redis_server_pids(directory: Path) -> list[int]:
    """Pids of redis-server processes running in ``directory`` (redis chdirs to its ``dir``)."""
    proc = Path("/proc")
    if not proc.is_dir():
        pytest.skip("needs /proc to find server processes")
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"redis-server" not in (entry / "cmdline").read_bytes():
                continue
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if cwd == directory.resolve() or directory.resolve() in cwd.parents:
            found.append(int(entry.name))
    return found


@pytest.fixture
def server_pids() -> Callable[[Path], list[int]]:
    return redis_server_pids


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    # pytest's tmp_path can be long enough by itself to push a socket path past the OS limit.
    base = "/tmp" if os.path.isdir("/tmp") else None
    path = Path(tempfile.mkdtemp(prefix="ro-", dir=base)).resolve()
    try:
        yield path
    finally:
        # A failed test must still not leave servers behind: kill any left under this dir.
        if Path("/proc").is_dir():
            for pid in redis_server_pids(path):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_embedded(short_tmp: Path) -> Iterator[Callable[..., EmbeddedRedis]]:
    """Build launchers under ``short_tmp``; every one built is stopped at teardown."""
    made: list[EmbeddedRedis] = []

    def make(data_dir: Path | None = None) -> EmbeddedRedis:
        embedded = EmbeddedRedis(data_dir or short_tmp / "data")
        made.append(embedded)
        return embedded

    yield make
    for embedded in made:
        embedded.stop()


@pytest.fixture(params=["fakeredis", "redis-server", "sentinel", "cluster"])
def any_redis(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The store contract runs against fakeredis and every real topology."""
    if request.param == "fakeredis":
        yield fakeredis.FakeRedis(decode_responses=True)
        return
    client = topology_client(request, request.param)
    yield client
    client.close()
