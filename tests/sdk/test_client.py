"""The SDK against a real redis-server: follow changes, survive outages, never raise."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rollout import RolloutClient
from rollout.core.evaluation import Reason
from rollout.core.model import Flag, State
from rollout.storage.codec import encode_flag
from rollout.storage.keys import Keys
from rollout.storage.redis_process import RedisProcess
from rollout.wiring import Services
from tests.support import wait_until

USERS = [f"user-{i}" for i in range(300)]


@pytest.fixture
def sdk(redis_server_flushed: RedisProcess) -> Iterator[RolloutClient]:
    client = RolloutClient(redis_server_flushed.url, resync_interval=3600)
    yield client
    client.close()


def answers(client: RolloutClient, key: str = "F") -> list[bool]:
    flag = client.flag(key)
    return [flag.is_enabled(u) for u in USERS]


def test_loads_at_start_and_follows_the_channel(
    real_services: Services, redis_server_flushed: RedisProcess
) -> None:
    real_services.flags.create("F", actor="t", allow=["qa-alice"])
    with RolloutClient(redis_server_flushed.url, resync_interval=3600) as client:
        flag = client.flag("F")
        assert flag.is_enabled("qa-alice") and not flag.is_enabled("user-1")
        real_services.flags.set_percent("F", 50, actor="t")
        assert wait_until(lambda: sum(answers(client)) > 100)
        real_services.flags.kill("F", reason="bad", actor="t")
        assert wait_until(lambda: not any(answers(client)) and not flag.is_enabled("qa-alice"))
        real_services.flags.delete("F", actor="t")
        assert wait_until(lambda: client.evaluate("F", "u").reason is Reason.UNKNOWN)


def resp(*args: str) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def test_outage_keeps_last_known_values_logs_once_and_resyncs(
    real_services: Services,
    redis_server_flushed: RedisProcess,
    real_redis: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real_services.flags.create("F", actor="t")
    real_services.flags.set_percent("F", 50, actor="t")
    client = RolloutClient(redis_server_flushed.url, resync_interval=3600)
    try:
        before = answers(client)
        assert any(before) and not all(before)
        real_redis.close()
        caplog.set_level(logging.WARNING, logger="rollout.sdk")
        redis_server_flushed.stop()
        assert wait_until(lambda: not client.connected, timeout=10)
        for _ in range(3):
            assert answers(client) == before  # no exception, same answers
            assert client.is_enabled("F", object()) in (True, False)
        outage = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(outage) == 1
        # While it is down, change the flag in the server's own log without any publish:
        # only the full resync on reconnect can bring this change to the client.
        full = encode_flag(Flag(key="F", salt="F", state=State.ROLLING, percent_bp=10_000))
        with open(redis_server_flushed.aof_path, "ab") as aof:
            aof.write(resp("HSET", Keys().flag("F"), "v", "99", "d", full))
        redis_server_flushed.start()
        assert wait_until(lambda: all(answers(client)), timeout=15)
        assert client.connected
    finally:
        client.close()
        if not redis_server_flushed.running:
            redis_server_flushed.start()


def test_bootstrap_file_serves_a_client_started_during_an_outage(
    real_services: Services, redis_server_flushed: RedisProcess, tmp_path: Path
) -> None:
    boot = tmp_path / "boot" / "flags.json"
    real_services.flags.create("F", actor="t", allow=["qa-alice"])
    real_services.flags.set_percent("F", 30, actor="t")
    with RolloutClient(redis_server_flushed.url, bootstrap_file=boot) as first:
        expected = answers(first)
    assert boot.exists()
    redis_server_flushed.stop()
    try:
        with RolloutClient(redis_server_flushed.url, bootstrap_file=boot, socket_timeout=0.5) as c:
            assert answers(c) == expected
            assert c.flag("F").is_enabled("qa-alice")
            assert not c.connected
    finally:
        redis_server_flushed.start()


def test_malformed_flag_answers_default_and_others_work(
    real_services: Services,
    redis_server_flushed: RedisProcess,
    real_redis: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real_services.flags.create("GOOD", actor="t", allow=["u"])
    real_services.flags.create("BAD", actor="t", allow=["u"])
    real_redis.hset(Keys().flag("BAD"), "d", "{broken")
    with RolloutClient(redis_server_flushed.url) as client:
        assert client.is_enabled("GOOD", "u")
        assert not client.is_enabled("BAD", "u")
        assert client.is_enabled("BAD", "u", default=True)
    assert any("BAD" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)


def test_environment_override_and_kill_beats_true(
    real_services: Services, redis_server_flushed: RedisProcess
) -> None:
    real_services.flags.create("ON", actor="t")
    real_services.flags.set_percent("ON", 100, actor="t")
    real_services.flags.create("FORCED", actor="t")
    env = {"ON": "false", "FORCED": "true", "PATH": "/bin"}
    with RolloutClient(redis_server_flushed.url, environ=env) as client:
        assert not any(answers(client, "ON"))
        assert all(answers(client, "FORCED"))
        assert client.evaluate("FORCED", "x").reason is Reason.OVERRIDE
        real_services.flags.kill("FORCED", reason="bad", actor="t")
        assert wait_until(lambda: not any(answers(client, "FORCED")))


def test_override_works_without_redis(tmp_path: Path) -> None:
    # Nothing listens on this port; the client must still start and obey the override.
    url = "redis://127.0.0.1:9/0"
    with RolloutClient(url, environ={"F": "true"}, socket_timeout=0.2) as client:
        assert client.is_enabled("F", "anyone")
        assert not client.is_enabled("OTHER", "anyone")
        assert client.is_enabled("OTHER", "anyone", default=True)


def test_sdk_never_starts_the_embedded_server(tmp_path: Path) -> None:
    with RolloutClient(data_dir=tmp_path / "data") as client:
        assert not client.connected
        assert not client.is_enabled("F", "u")
    assert not (tmp_path / "data" / "redis.pid").exists()
    assert not list((tmp_path / "data").glob("*.aof")) if (tmp_path / "data").exists() else True
