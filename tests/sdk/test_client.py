"""The SDK against a real redis-server: follow changes, survive outages, never raise."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rollout import FlagHandle, RolloutClient
from rollout.core.evaluation import Reason
from rollout.core.model import Flag, State
from rollout.sdk.values import ValueSink
from rollout.services.container import Services
from rollout.storage.codec import encode_flag
from rollout.storage.keys import Keys
from rollout.storage.redis_process import RedisProcess
from tests.support import append_to_log, wait_until

USERS = [f"user-{i}" for i in range(300)]


@pytest.fixture
def sdk(redis_server_flushed: RedisProcess) -> Iterator[RolloutClient]:
    client = RolloutClient(redis_server_flushed.url, resync_interval=3600)
    yield client
    client.close()


def answers(client: RolloutClient, key: str = "F") -> list[bool]:
    flag = client.flag(key)
    return [flag.is_enabled(u) for u in USERS]


def test_loads_at_start_and_follows_the_channel(real_services: Services, real_url: str) -> None:
    real_services.flags.create("F", actor="t", allow=["qa-alice"])
    with RolloutClient(real_url, resync_interval=3600) as client:
        flag = client.flag("F")
        assert flag.is_enabled("qa-alice") and not flag.is_enabled("user-1")
        real_services.flags.set_percent("F", 50, actor="t")
        assert wait_until(lambda: sum(answers(client)) > 100)
        real_services.flags.kill("F", reason="bad", actor="t")
        assert wait_until(lambda: not any(answers(client)) and not flag.is_enabled("qa-alice"))
        real_services.flags.delete("F", actor="t")
        assert wait_until(lambda: client.evaluate("F", "u").reason is Reason.UNKNOWN)


def test_outage_keeps_last_known_values_logs_once_and_resyncs(
    own_services: Services, own_redis_server: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    own_services.flags.create("F", actor="t")
    own_services.flags.set_percent("F", 50, actor="t")
    odd = object()  # not a string: bucketed by its text, the same text all along
    with RolloutClient(own_redis_server.url, resync_interval=3600) as client:
        before, odd_before = answers(client), client.is_enabled("F", odd)
        assert any(before) and not all(before)
        caplog.set_level(logging.WARNING, logger="rollout.sdk")
        own_redis_server.stop()
        assert wait_until(lambda: not client.connected, timeout=10)
        for _ in range(3):
            assert answers(client) == before  # no exception, same answers
            assert client.is_enabled("F", odd) is odd_before
        outage = [
            r for r in caplog.records if r.name == "rollout.sdk" and "unreachable" in r.getMessage()
        ]
        assert len(outage) == 1
        # While it is down, change the flag in the server's own log without any publish:
        # only the full resync on reconnect can bring this change to the client.
        full = encode_flag(Flag(key="F", salt="F", state=State.ROLLING, percent_bp=10_000))
        append_to_log(own_redis_server, "HSET", Keys().flag("F"), "v", "99", "d", full)
        own_redis_server.start()
        assert wait_until(lambda: all(answers(client)), timeout=15)
        assert client.connected


def test_bootstrap_file_serves_a_client_started_during_an_outage(
    own_services: Services, own_redis_server: RedisProcess, tmp_path: Path
) -> None:
    boot = tmp_path / "boot" / "flags.json"
    own_services.flags.create("F", actor="t", allow=["qa-alice"])
    own_services.flags.set_percent("F", 30, actor="t")
    with RolloutClient(own_redis_server.url, bootstrap_file=boot) as first:
        expected = answers(first)
    assert boot.exists()
    own_redis_server.stop()
    with RolloutClient(own_redis_server.url, bootstrap_file=boot, socket_timeout=0.5) as c:
        assert answers(c) == expected
        assert c.flag("F").is_enabled("qa-alice")
        assert not c.connected


def test_malformed_flag_answers_default_and_others_work(
    real_services: Services,
    real_url: str,
    real_redis: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real_services.flags.create("GOOD", actor="t", allow=["u"])
    real_services.flags.create("BAD", actor="t", allow=["u"])
    real_redis.hset(Keys().flag("BAD"), "d", "{broken")
    with RolloutClient(real_url) as client:
        assert client.is_enabled("GOOD", "u")
        assert not client.is_enabled("BAD", "u")
        assert client.is_enabled("BAD", "u", default=True)
    assert any("BAD" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)


def test_environment_override_and_kill_beats_true(real_services: Services, real_url: str) -> None:
    real_services.flags.create("ON", actor="t")
    real_services.flags.set_percent("ON", 100, actor="t")
    real_services.flags.create("FORCED", actor="t")
    env = {"ON": "false", "FORCED": "true", "PATH": "/bin"}
    with RolloutClient(real_url, environ=env) as client:
        assert not any(answers(client, "ON"))
        assert all(answers(client, "FORCED"))
        assert client.evaluate("FORCED", "x").reason is Reason.OVERRIDE
        real_services.flags.kill("FORCED", reason="bad", actor="t")
        assert wait_until(lambda: not any(answers(client, "FORCED")))


def test_override_works_without_redis() -> None:
    # Bound but never listening: refused at once, and nobody else can listen there meanwhile.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"redis://127.0.0.1:{closed.getsockname()[1]}/0"
        with RolloutClient(url, environ={"F": "true"}, socket_timeout=0.2) as client:
            assert not client.connected
            assert client.is_enabled("F", "anyone")
            assert not client.is_enabled("OTHER", "anyone")
            assert client.is_enabled("OTHER", "anyone", default=True)


def test_sdk_never_starts_the_embedded_server(tmp_path: Path) -> None:
    with RolloutClient(data_dir=tmp_path / "data") as client:
        assert not client.connected
        assert not client.is_enabled("F", "u")
    assert not (tmp_path / "data" / "redis.pid").exists()
    assert not list((tmp_path / "data").glob("*.aof"))  # none when the directory is absent


def test_following_and_flushing_share_one_connection_pool(
    own_services: Services, own_redis_server: RedisProcess
) -> None:
    own_services.flags.create("F", actor="t")
    own_services.flags.set_percent("F", 100, actor="t")
    probe = own_redis_server.client()
    try:
        before = len(probe.client_list())  # the probe's and the writer's connections
        with RolloutClient(own_redis_server.url, flush_interval=60, environ={}) as client:
            client.flag("F").record("u")
            client.flush()
            assert (
                own_services.gates.evidence(own_services.flags.get("F")).stage.treatment.samples
                == 1
            )
            # The channel's own socket, and one pooled connection that loaded and flushed.
            assert len(probe.client_list()) - before == 2
    finally:
        probe.close()


def test_a_handle_records_through_the_outcomes_it_was_handed(dead_redis_url: str) -> None:
    """A handle holds the narrow ``Outcomes`` the client gives it, not the client's recorder."""

    class Sink:
        def __init__(self) -> None:
            self.values = ValueSink()
            self.calls: list[tuple[Any, ...]] = []

        def record(self, *args: Any) -> None:
            self.calls.append(args)

    client = RolloutClient(dead_redis_url, start=False, environ={})
    try:
        compiled = client.flag("F").compiled
        sink = Sink()
        handle = FlagHandle(client, "F", False, compiled, sink)
        handle.record("u1", ok=False, duration_ms=3.0, error_type="Boom")
        handle.record("u2", values=[("not", "a mapping")])  # type: ignore[arg-type]
        assert sink.calls == [
            (compiled, "u1", False, 3.0, "Boom", None),
            (compiled, "u2", True, None, None, None),
        ]
        assert sink.values.dropped == 1  # the bad values, counted by the sink it was handed
    finally:
        client.close()
