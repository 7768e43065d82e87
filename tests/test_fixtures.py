"""The suite's own fixtures keep their promises: dead addresses refuse, own servers are own."""

from __future__ import annotations

import socket

import pytest
import redis
from hypothesis import settings

from rollout.storage.connection import client_for_url
from rollout.storage.redis_process import RedisProcess
from tests.fixtures_redis import SHARED_STOPPED


def test_hypothesis_runs_without_a_deadline() -> None:
    assert settings.get_current_profile_name() == "rollout"
    assert settings().deadline is None


@pytest.mark.parametrize("address", ["closed_port", "dead_redis_url"])
def test_dead_addresses_refuse_at_once(address: str, request: pytest.FixtureRequest) -> None:
    value = request.getfixturevalue(address)
    url = f"redis://127.0.0.1:{value}/0" if address == "closed_port" else value
    client = client_for_url(url, socket_timeout=30)
    # Refused by the kernel, not timed out (redis.TimeoutError is no ConnectionError): the
    # answer comes at once however loaded the machine is.
    with pytest.raises(redis.ConnectionError, match=r"refused|No such file"):
        client.ping()
    client.close()


def test_a_closed_port_cannot_be_taken_while_held(closed_port: int) -> None:
    with socket.socket() as other, pytest.raises(OSError):
        other.bind(("127.0.0.1", closed_port))


def test_an_own_server_is_not_the_shared_one(
    own_redis_server: RedisProcess, redis_server_flushed: RedisProcess
) -> None:
    assert own_redis_server.port != redis_server_flushed.port
    own_redis_server.stop()
    shared = redis_server_flushed.client()
    try:
        assert shared.ping()  # stopping ours left the shared server up
    finally:
        shared.close()
    own_redis_server.start()
    own = own_redis_server.client()
    try:
        assert own.ping()
    finally:
        own.close()


def test_a_test_that_stops_the_shared_server_fails_and_so_does_the_next(
    pytester: pytest.Pytester,
) -> None:
    """Never restarted behind the suite's back: the culprit fails at its teardown, and a
    later test that wants the shared server fails at its setup instead of running."""
    pytester.makeconftest('pytest_plugins = ["tests.fixtures_redis"]')
    pytester.makepyfile(
        """
        def test_stops_it(redis_server_flushed):
            redis_server_flushed.stop()

        def test_wants_it_next(redis_server_flushed):
            raise AssertionError("ran against a stopped server")
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=2)  # the first passes its call, fails its teardown
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_stops_it*",
            f"*{SHARED_STOPPED} after this test*",
            "*ERROR at setup of test_wants_it_next*",
            f"*{SHARED_STOPPED} before this test*",
        ]
    )
