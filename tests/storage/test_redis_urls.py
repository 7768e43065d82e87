"""ROLLOUT_REDIS_URL: every topology's form, one-line errors without secrets, masking."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from click.testing import CliRunner

from rollout.cli.main import cli
from rollout.core.errors import StorageError, ValidationError
from rollout.core.redis_url import RedisUrlError, mask_secrets, mask_url, parse_redis_url
from rollout.settings import load_settings
from rollout.storage.connection import client_for_url
from tests.cli.conftest import assert_one_line_error

SECRET = "s3cr3t-Pa55"


def test_single_node_forms() -> None:
    plain = parse_redis_url("redis://127.0.0.1:7000/3")
    assert (plain.topology, plain.hosts, plain.db, plain.tls) == (
        "single",
        (("127.0.0.1", 7000),),
        3,
        False,
    )
    assert parse_redis_url("redis://h").hosts == (("h", 6379),)
    tls = parse_redis_url(f"rediss://app:{SECRET}@h:6380")
    assert (tls.tls, tls.username, tls.password) == (True, "app", SECRET)
    assert parse_redis_url("redis://h:1?tls=true").tls is True
    sock = parse_redis_url(f"unix://:{SECRET}@/run/redis.sock?db=2")
    assert (sock.path, sock.db, sock.password) == ("/run/redis.sock", 2, SECRET)
    assert parse_redis_url("redis://[::1]:7000").hosts == (("::1", 7000),)


def test_sentinel_form() -> None:
    target = parse_redis_url(
        f"redis+sentinel://app:{SECRET}@s1:26380,s2/mymaster/4"
        "?sentinel_username=watch&sentinel_password=other-secret"
    )
    assert target.topology == "sentinel"
    assert target.hosts == (("s1", 26380), ("s2", 26379))
    assert (target.service, target.db) == ("mymaster", 4)
    assert (target.username, target.password) == ("app", SECRET)
    assert (target.sentinel_username, target.sentinel_password) == ("watch", "other-secret")
    assert parse_redis_url("rediss+sentinel://s1/m").tls is True


def test_cluster_form() -> None:
    target = parse_redis_url(f"redis+cluster://:{SECRET}@n1:7000,n2:7001,n3")
    assert target.topology == "cluster"
    assert target.hosts == (("n1", 7000), ("n2", 7001), ("n3", 6379))
    assert target.password == SECRET and target.db == 0
    assert parse_redis_url("redis+cluster://n1:7000?tls=yes").tls is True


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis://", "no host"),
        ("redis+cluster://", "no host"),
        (f"redis://:{SECRET}@h:0", "bad port '0'"),
        ("redis://h:99999", "bad port"),
        ("redis://h:x1", "bad port"),
        ("redis+sentinel://s1:26379,s2:abc/m", "bad port 'abc'"),
        ("redis+cluster://a:1,,b:2", "empty host"),
        ("ftp://h", "unknown scheme 'ftp'"),
        ("h:6379", "unknown scheme"),
        ("redis+sentinel://s1:26379", "no service name"),
        ("redis+cluster://n1:7000/2", "only database 0"),
        ("redis://a:1,b:2", "several hosts"),
        ("redis://h?frob=1", "unknown parameter 'frob'"),
        ("redis://h?sentinel_password=x", "redis+sentinel:// only"),
        ("unix://relative.sock", "absolute socket path"),
        ("redis://h?tls=maybe", "tls must be true or false"),
    ],
)
def test_malformed_urls_name_the_problem_without_the_secret(url: str, problem: str) -> None:
    with pytest.raises(RedisUrlError, match=re.escape(problem)) as caught:
        parse_redis_url(url)
    assert SECRET not in str(caught.value)
    with pytest.raises(ValidationError) as invalid:
        load_settings(redis_url=url)
    message = str(invalid.value)
    assert message.startswith("invalid setting ROLLOUT_REDIS_URL: ") and problem in message
    assert SECRET not in message and "\n" not in message


def test_masking_keeps_everything_but_the_passwords() -> None:
    url = f"redis+sentinel://app:{SECRET}@s1:1,s2:2/mymaster/1?sentinel_password=zz-top-secret"
    shown = mask_url(url)
    assert shown == "redis+sentinel://app:***@s1:1,s2:2/mymaster/1?sentinel_password=***"
    assert mask_url(f"rediss://:{SECRET}@h:1/0") == "rediss://:***@h:1/0"
    assert mask_url(f"unix://:{SECRET}@/tmp/r.sock") == "unix://:***@/tmp/r.sock"
    assert mask_url(f"redis+cluster://u:{SECRET}@a:1") == "redis+cluster://u:***@a:1"
    assert SECRET not in mask_url(f"garbage://u:{SECRET}@x")
    text = mask_secrets(f"AUTH failed for {SECRET} and zz-top-secret", url)
    assert SECRET not in text and "zz-top-secret" not in text


def test_cli_malformed_url_is_one_line_exit_2_without_the_password() -> None:
    for url in (f"redis://:{SECRET}@h:70000", "redis+cluster://", "mongodb://h"):
        result = CliRunner().invoke(cli, ["--redis-url", url, "list"])
        line = assert_one_line_error(result, 2)
        assert "ROLLOUT_REDIS_URL" in line and SECRET not in result.output
        result = CliRunner().invoke(cli, ["list"], env={"ROLLOUT_REDIS_URL": url})
        assert "ROLLOUT_REDIS_URL" in assert_one_line_error(result, 2)


def test_client_for_url_refuses_a_malformed_url() -> None:
    with pytest.raises(ValidationError, match="bad port"):
        client_for_url("redis://h:0")


def test_a_dead_cluster_seed_is_one_clear_line(closed_port: int) -> None:
    with pytest.raises(StorageError) as caught:
        client_for_url(f"redis+cluster://:{SECRET}@127.0.0.1:{closed_port}", socket_timeout=0.5)
    assert "no Redis Cluster at redis+cluster://:***@127.0.0.1" in str(caught.value)
    assert SECRET not in str(caught.value) and "\n" not in str(caught.value)


def test_clients_carry_explicit_jittered_retries() -> None:
    from redis.backoff import ExponentialWithJitterBackoff

    from rollout.core.defaults import REDIS_FAILOVER_RETRIES, REDIS_RETRIES

    client = client_for_url("redis://127.0.0.1:1/0")
    retry = client.connection_pool.connection_kwargs["retry"]
    assert isinstance(retry._backoff, ExponentialWithJitterBackoff)
    assert retry._retries == REDIS_RETRIES
    sentinel = client_for_url("redis+sentinel://127.0.0.1:1/m")
    assert sentinel.connection_pool.service_name == "m"
    assert sentinel.connection_pool.connection_kwargs["retry"]._retries == REDIS_FAILOVER_RETRIES
    tls = client_for_url("rediss://127.0.0.1:1/0", ca_file=None)
    assert tls.connection_pool.connection_class.__name__ == "SSLConnection"


def test_banners_show_the_masked_url() -> None:
    from rollout.wiring import public_url

    assert public_url(None) == "embedded"
    assert public_url(f"redis+cluster://u:{SECRET}@a:1") == "redis+cluster://u:***@a:1"


def test_embedded_status_masks_an_external_url() -> None:
    url = f"redis://:{SECRET}@elsewhere:6379/0"
    result = CliRunner().invoke(cli, ["embedded", "status"], env={"ROLLOUT_REDIS_URL": url})
    assert result.exit_code == 0, result.output
    assert "redis://:***@elsewhere:6379/0" in result.output and SECRET not in result.output


def test_a_sentinel_without_the_service_is_one_clear_line_at_start(sentinel_group: Any) -> None:
    url = sentinel_group.url.replace("/rollout-test/", "/no-such-service/")
    result = CliRunner().invoke(cli, ["--redis-url", url, "list"])
    line = assert_one_line_error(result, 1)
    assert "storage unavailable" in line and "no-such-service" in line


def test_a_sentinel_without_the_service_is_asked_once_not_retried(sentinel_group: Any) -> None:
    """Every sentinel answered that it knows no such service: no retry can change that, so
    none is spent (the failover policy's retries would take seconds to say the same)."""
    from rollout.core.defaults import REDIS_FAILOVER_RETRIES
    from rollout.storage.flags import FlagStore
    from rollout.storage.keys import Keys

    admins = [sentinel_group.client(sentinel.port) for sentinel in sentinel_group.sentinels]

    def commands() -> list[int]:  # each call adds its own INFO to the next count
        return [int(admin.info("stats")["total_commands_processed"]) for admin in admins]

    url = sentinel_group.url.replace("/rollout-test/", "/no-such-service/")
    client = client_for_url(url, socket_timeout=1.0)
    before = commands()
    try:
        with pytest.raises(StorageError) as caught:
            FlagStore(client, Keys("t")).ping()
    finally:
        client.close()
    sent = [now - then for now, then in zip(commands(), before, strict=True)]
    # One SENTINEL MASTERS each, with the driver's connection set-up and our INFO; retried,
    # each sentinel would have been asked at least once per retry.
    assert all(count < 1 + REDIS_FAILOVER_RETRIES for count in sent), sent
    assert "knows no such service" in str(caught.value)


def test_a_seed_that_is_not_a_cluster_node_is_one_clear_line_at_start(
    redis_server_flushed: Any,
) -> None:
    url = f"redis+cluster://127.0.0.1:{redis_server_flushed.port}"
    result = CliRunner().invoke(cli, ["--redis-url", url, "list"])
    line = assert_one_line_error(result, 1)
    assert "no Redis Cluster at redis+cluster://127.0.0.1" in line


def test_the_sdk_logs_a_wrong_service_once_and_serves_its_bootstrap(
    sentinel_group: Any, tmp_path: Any
) -> None:
    import logging

    import fakeredis

    from rollout.sdk.client import RolloutClient
    from rollout.sdk.sync import write_bootstrap
    from rollout.wiring import build_services
    from tests.conftest import make_settings

    services = build_services(
        make_settings(), redis_client=fakeredis.FakeRedis(decode_responses=True)
    )
    services.flags.create("ON", actor="t", stages=[{"percent": 100}])
    write_bootstrap(tmp_path / "boot.json", {"ON": services.flags.advance("ON", actor="t")})
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("rollout.sdk")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.WARNING)  # whatever an earlier test (the demo) set on "rollout"
    url = sentinel_group.url.replace("/rollout-test/", "/no-such-service/")
    try:
        client = RolloutClient(
            url, bootstrap_file=tmp_path / "boot.json", socket_timeout=0.5, environ={}
        )
        try:
            assert client.flag("ON").is_enabled("u1") is True  # from the bootstrap file
            time.sleep(0.5)  # the follower retries meanwhile; it must not log again
        finally:
            client.close()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    # Once for the flags (the metrics recorder says once, apart, that it keeps its counts).
    lines = [line for line in seen if line.startswith("Redis unreachable")]
    assert len(lines) == 1 and "No master found for 'no-such-service'" in lines[0], seen
