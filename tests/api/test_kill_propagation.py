"""Emergency disable end to end: one kill over HTTP turns the flag off in every SDK process."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest

from rollout.api.app import create_app
from rollout.storage.redis_process import RedisProcess
from tests.api.conftest import ADMIN, api_services
from tests.support import FakeClock

PROCESSES = 4
# Each SDK process says "on" once it serves the flag, then "off" when the kill reaches it.
SDK_SCRIPT = """
import sys, time
from rollout.sdk.client import RolloutClient

client = RolloutClient(redis_url=sys.argv[1])
flag = client.flag("F")
deadline = time.monotonic() + 20
while not flag.is_enabled("user-1") and time.monotonic() < deadline:
    time.sleep(0.001)
print("on" if flag.is_enabled("user-1") else "never-on", flush=True)
while flag.is_enabled("user-1") and time.monotonic() < deadline:
    time.sleep(0.0005)
print("off" if not flag.is_enabled("user-1") else "still-on", flush=True)
client.close()
"""


@pytest.mark.slow
def test_kill_turns_off_every_sdk_process(
    redis_server_flushed: RedisProcess, real_redis: Any, clock: FakeClock
) -> None:
    client = create_app(services=api_services(real_redis, clock)).test_client()
    client.post("/api/v1/flags", json={"key": "F"}, headers=ADMIN)
    client.put("/api/v1/flags/F/percentage", json={"percent": 100}, headers=ADMIN)
    sdks = [
        subprocess.Popen(
            [sys.executable, "-c", SDK_SCRIPT, redis_server_flushed.url],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    try:
        assert [p.stdout.readline().strip() for p in sdks if p.stdout] == ["on"] * PROCESSES
        started = time.monotonic()
        response = client.post("/api/v1/flags/F/kill", json={"reason": "drill"}, headers=ADMIN)
        assert response.status_code == 200
        answers = [p.stdout.readline().strip() for p in sdks if p.stdout]
        elapsed = time.monotonic() - started
        assert answers == ["off"] * PROCESSES
        # Pub/sub, not polling: far below any resync interval (bench/propagation.py measures p99).
        assert elapsed < 2.0, elapsed
    finally:
        for process in sdks:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
