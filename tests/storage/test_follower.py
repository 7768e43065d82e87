"""The channel follower on its own: what each callback receives, and when."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from rollout.core.errors import MalformedFlag
from rollout.core.model import Flag, Status
from rollout.services.container import Services
from rollout.storage.connection import client_for_url
from rollout.storage.events import EventStore
from rollout.storage.follower import ChannelFollower
from rollout.storage.keys import Keys
from rollout.storage.redis_process import RedisProcess
from rollout.wiring import build_services
from tests.conftest import make_settings
from tests.support import FakeClock, wait_until

log = logging.getLogger("rollout.test-follower")
KEYS = Keys()


class Calls:
    """Everything the follower told its user, in order."""

    def __init__(self) -> None:
        self.loads: list[tuple[dict[str, Flag], list[MalformedFlag]]] = []
        self.changes: list[tuple[str, int, Flag | None]] = []
        self.statuses: list[tuple[str, Status | None]] = []
        self.lost = 0
        self.fail_next_change = False

    def load(self, flags: dict[str, Flag], problems: list[MalformedFlag]) -> None:
        self.loads.append((flags, problems))

    def change(self, key: str, version: int, flag: Flag | None) -> None:
        if self.fail_next_change:
            self.fail_next_change = False
            raise RuntimeError("a bug in the user's callback")
        self.changes.append((key, version, flag))

    def status(self, key: str, status: Status | None) -> None:
        self.statuses.append((key, status))

    def on_lost(self) -> None:
        self.lost += 1


def follower_for(
    redis: Any, calls: Calls, monotonic: FakeClock, *, statuses: bool = False
) -> ChannelFollower:
    return ChannelFollower(
        lambda: redis,
        KEYS,
        on_load=calls.load,
        on_change=calls.change,
        on_status=calls.status if statuses else None,
        on_lost=calls.on_lost,
        resync_interval=10.0,
        monotonic=monotonic,
        log=log,
        while_down="testing",
        name="test-follower",
    )


@pytest.fixture
def monotonic() -> FakeClock:
    return FakeClock(start=0.0)


@pytest.fixture
def services(real_redis: Any) -> Services:
    return build_services(make_settings(), redis_client=real_redis)


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def running(real_redis: Any, calls: Calls, monotonic: FakeClock) -> Iterator[ChannelFollower]:
    follower = follower_for(real_redis, calls, monotonic, statuses=True)
    assert follower.first_sync()
    follower.start()
    yield follower
    follower.stop()


def test_first_sync_loads_once_and_the_thread_follows_without_loading_again(
    services: Services, real_redis: Any, calls: Calls, monotonic: FakeClock
) -> None:
    services.flags.create("F", actor="t")
    follower = follower_for(real_redis, calls, monotonic)
    try:
        assert follower.first_sync()
        assert follower.connected and follower.synced.is_set()
        assert [set(flags) for flags, _ in calls.loads] == [{"F"}]
        follower.start()
        services.flags.update("F", {"description": "x"}, actor="t")
        assert wait_until(lambda: len(calls.changes) == 1)
        key, version, flag = calls.changes[0]
        assert (key, version) == ("F", 2) and flag is not None and flag.description == "x"
        assert flag.version == 2
        assert len(calls.loads) == 1
    finally:
        follower.stop()


def test_resyncs_when_the_injected_clock_says_so(
    running: ChannelFollower, services: Services, calls: Calls, monotonic: FakeClock
) -> None:
    monotonic.advance(9.0)
    services.flags.create("MARK", actor="t")  # the thread has looked at the clock since
    assert wait_until(lambda: len(calls.changes) == 1)
    assert len(calls.loads) == 1
    monotonic.advance(1.0)
    assert wait_until(lambda: len(calls.loads) == 2)
    assert set(calls.loads[1][0]) == {"MARK"}
    monotonic.advance(10.0)
    assert wait_until(lambda: len(calls.loads) == 3)
    assert calls.lost == 0 and running.connected


def test_deletes_statuses_and_unreadable_values(
    running: ChannelFollower,
    services: Services,
    real_redis: Any,
    calls: Calls,
    caplog: pytest.LogCaptureFixture,
) -> None:
    services.flags.create("F", actor="t")
    services.flags.record_status("F", "hold", "baking")
    services.flags.delete("F", actor="t")
    real_redis.publish(KEYS.changes, json.dumps({"key": "G", "version": 7, "flag": {"k": 1}}))
    assert wait_until(lambda: len(calls.changes) == 3)
    assert [(k, v, f is None) for k, v, f in calls.changes] == [
        ("F", 1, False),
        ("F", 2, True),
        ("G", 7, True),  # unreadable: as good as gone, and logged
    ]
    assert wait_until(lambda: len(calls.statuses) == 1)
    key, status = calls.statuses[0]
    assert key == "F" and status is not None and status.decision == "hold"
    unreadable = [r for r in caplog.records if r.name == log.name and "'G'" in r.getMessage()]
    assert len(unreadable) == 1 and unreadable[0].levelno == logging.ERROR


def test_a_bug_in_a_callback_reconnects_and_loads_again(
    running: ChannelFollower, services: Services, calls: Calls
) -> None:
    calls.fail_next_change = True
    services.flags.create("F", actor="t")
    assert wait_until(lambda: len(calls.loads) == 2)  # started over with a full load
    assert calls.lost == 1
    assert set(calls.loads[1][0]) == {"F"}  # what the failed change carried is not lost


def test_an_outage_is_logged_once_and_the_return_once(
    own_redis_server: RedisProcess,
    calls: Calls,
    monotonic: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=log.name)
    redis = client_for_url(own_redis_server.url, socket_timeout=0.5)
    follower = follower_for(redis, calls, monotonic)
    try:
        assert follower.first_sync()
        follower.start()
        own_redis_server.stop()
        assert wait_until(lambda: not follower.connected, timeout=10)
        # Retries go on, each a lost attempt (a refused connection fails at once); the line
        # is not repeated.
        assert wait_until(lambda: calls.lost >= 3, timeout=10)
        own_redis_server.start()
        assert wait_until(lambda: follower.connected, timeout=15)
        messages = [r.getMessage() for r in caplog.records if r.name == log.name]
        assert sum("unreachable" in m for m in messages) == 1
        assert sum("reachable again" in m for m in messages) == 1
        assert len(calls.loads) == 2
    finally:
        follower.stop()
        redis.close()


def test_event_appends_reach_only_a_user_that_asks_for_them(
    services: Services, real_redis: Any, monotonic: FakeClock
) -> None:
    """The notifier's watch asks for event-stream appends (``on_event``); the SDK and the
    API's cache do not, and are not even subscribed to them. An append is never a change."""
    appended: list[str] = []
    notified, plain = Calls(), Calls()
    asking = ChannelFollower(
        lambda: real_redis,
        KEYS,
        on_load=notified.load,
        on_change=notified.change,
        on_event=appended.append,
        resync_interval=10.0,
        monotonic=monotonic,
        log=log,
        while_down="testing",
        name="test-follower-events",
    )
    others = follower_for(real_redis, plain, monotonic)
    try:
        for follower in (asking, others):
            assert follower.first_sync()
            follower.start()
        EventStore(real_redis, KEYS).append("F", None, {"type": "hold", "flag": "F"})
        services.flags.create("MARK", actor="t")  # published after the append
        assert wait_until(lambda: len(notified.changes) == 1 and len(plain.changes) == 1)
        assert appended == ["F"]
        assert [c[0] for c in notified.changes] == [c[0] for c in plain.changes] == ["MARK"]
    finally:
        asking.stop()
        others.stop()
