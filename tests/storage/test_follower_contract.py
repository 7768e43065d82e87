"""One contract for every user of the channel follower: the SDK client and the API's cache.

Each test runs against both, on a real redis-server. What a user holds is observed through its
public reads; a value written "quietly" (stored, not published) tells a full load apart from
the channel, and for the API's cache it also tells memory apart from a read that went to Redis.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from rollout import RolloutClient
from rollout.core.errors import FlagNotFound, StorageError
from rollout.core.model import Flag, State
from rollout.core.schema import flag_to_dict
from rollout.services.container import Services
from rollout.services.reads import FlagReads
from rollout.storage.codec import encode_flag
from rollout.storage.connection import client_for_url
from rollout.storage.flags import FlagStore
from rollout.storage.keys import Keys
from rollout.storage.redis_process import RedisProcess
from rollout.wiring import build_services
from tests.conftest import make_settings
from tests.support import FakeClock, append_to_log, wait_until, write_quietly

RESYNC = 30.0
KEYS = Keys()


class SdkUser:
    """The SDK keeps its last-known flags through an outage."""

    keeps_flags_in_outage = True

    def __init__(self, url: str, monotonic: FakeClock) -> None:
        self.client = RolloutClient(
            url,
            resync_interval=RESYNC,
            monotonic=monotonic,
            environ={},
            socket_timeout=0.5,
            flush_interval=60,
        )

    def held(self, key: str) -> Flag | None:
        return self.client.known_flags().get(key)

    def wait_synced(self) -> bool:
        return self.client.wait_synced()

    def disconnected(self) -> bool:
        return not self.client.connected

    def close(self) -> None:
        self.client.close()


class ApiUser:
    """The API's cache drops what it holds in an outage, and reads go to Redis."""

    keeps_flags_in_outage = False

    def __init__(self, url: str, monotonic: FakeClock) -> None:
        self.redis = client_for_url(url, socket_timeout=0.5)
        store = FlagStore(self.redis, KEYS)
        self.reads = FlagReads(store, self.redis, KEYS, resync_interval=RESYNC, monotonic=monotonic)
        self.reads.start()

    def held(self, key: str) -> Flag | None:
        try:
            return self.reads.get(key)
        except FlagNotFound:
            return None

    def wait_synced(self) -> bool:
        return self.reads.wait_synced()

    def disconnected(self) -> bool:
        return not self.reads.connected

    def close(self) -> None:
        self.reads.stop()
        self.redis.close()


USERS = {"sdk": SdkUser, "api-cache": ApiUser}


@pytest.fixture
def server(own_redis_server: RedisProcess) -> RedisProcess:
    return own_redis_server  # tests here stop and start it


@pytest.fixture
def redis(server: RedisProcess) -> Iterator[Any]:
    client = client_for_url(server.url)
    yield client
    client.close()


@pytest.fixture
def writer(redis: Any) -> Services:
    return build_services(make_settings(), redis_client=redis)


@pytest.fixture
def monotonic() -> FakeClock:
    return FakeClock(start=0.0)


@pytest.fixture(params=sorted(USERS))
def user(
    request: pytest.FixtureRequest, server: RedisProcess, writer: Services, monotonic: FakeClock
) -> Iterator[SdkUser | ApiUser]:
    writer.flags.create("F", actor="t", stages=[{"percent": 50}])
    made = USERS[request.param](server.url, monotonic)
    assert made.wait_synced()
    yield made
    made.close()


def version(user: SdkUser | ApiUser, key: str) -> int | None:
    held = user.held(key)
    return None if held is None else held.version


def caught_up(user: SdkUser | ApiUser, writer: Services, redis: Any, mark: str) -> bool:
    """Wait until ``user`` has followed the channel past this moment.

    A marker flag is created (published), then overwritten quietly: only the channel can show
    the user the created value, and messages on the channel arrive in order.
    """
    created = writer.flags.create(mark, actor="t")
    write_quietly(redis, created.with_changes(description="quiet"))
    return wait_until(lambda: (held := user.held(mark)) is not None and held.description == "")


def test_changes_and_deletes_arrive_through_the_channel(
    user: SdkUser | ApiUser, writer: Services
) -> None:
    moved = writer.flags.advance("F", actor="t")
    assert wait_until(lambda: version(user, "F") == moved.version)
    assert user.held("F").percent_bp == 5000  # type: ignore[union-attr]
    writer.flags.delete("F", actor="t")
    assert wait_until(lambda: user.held("F") is None)


def test_older_news_from_the_channel_is_ignored(
    user: SdkUser | ApiUser, writer: Services, redis: Any
) -> None:
    current = writer.flags.update("F", {"description": "current"}, actor="t")
    assert wait_until(lambda: version(user, "F") == 2)
    stale = flag_to_dict(current.with_changes(description="stale", version=1))
    redis.publish(KEYS.changes, json.dumps({"key": "F", "version": 1, "flag": stale}))
    redis.publish(KEYS.changes, json.dumps({"key": "F", "version": 2, "flag": None}))
    assert caught_up(user, writer, redis, "MARK")
    held = user.held("F")
    assert held is not None and (held.version, held.description) == (2, "current")


def test_a_periodic_resync_over_a_live_connection_brings_what_was_never_published(
    user: SdkUser | ApiUser, writer: Services, redis: Any, monotonic: FakeClock
) -> None:
    flag = writer.flags.get("F")
    write_quietly(redis, flag.with_changes(description="quiet", version=flag.version + 5))
    assert caught_up(user, writer, redis, "MARK")  # live, and the quiet write not seen yet
    monotonic.advance(RESYNC - 1)
    assert caught_up(user, writer, redis, "MARK2")
    assert user.held("F").description == ""  # type: ignore[union-attr]
    monotonic.advance(1)
    assert wait_until(lambda: user.held("F").description == "quiet")  # type: ignore[union-attr]
    assert user.held("F").version == flag.version + 5  # type: ignore[union-attr]
    assert not user.disconnected()


def test_an_outage_then_a_reconnect_with_a_full_resync(
    user: SdkUser | ApiUser, writer: Services, server: RedisProcess, redis: Any
) -> None:
    before = user.held("F")
    assert before is not None
    redis.close()
    server.stop()
    assert wait_until(user.disconnected, timeout=10)
    if user.keeps_flags_in_outage:
        assert user.held("F") == before
    else:
        with pytest.raises(StorageError):
            user.held("F")
    # Changed in the server's own log while it is down, with no publish: only the full load
    # after the reconnect can bring this to the user.
    changed = before.with_changes(state=State.ROLLING, percent_bp=10_000, version=99)
    append_to_log(server, "HSET", KEYS.flag("F"), "v", "99", "d", encode_flag(changed))
    server.start()
    assert wait_until(lambda: not user.disconnected(), timeout=15)
    assert user.held("F") == changed
    # Followed again, and served from what the reload brought, not from Redis on each read.
    assert caught_up(user, writer, redis, "MARK")
    write_quietly(redis, changed.with_changes(description="quiet", version=100))
    assert user.held("F").version == 99  # type: ignore[union-attr]
