"""User ids and texts that once crashed the process or leaked past validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollout import RolloutClient
from rollout.core.bucketing import bucket
from rollout.core.errors import ValidationError
from rollout.core.model import Flag, State
from rollout.services.container import Services

SURROGATE = "user-\ud800"


def offline_client(flag: Flag) -> RolloutClient:
    # Never started, so it never connects: the URL is not dialled.
    client = RolloutClient("unix:///nonexistent/rollout-test.sock", start=False, environ={})
    client.table.replace_all({flag.key: flag})
    return client


@pytest.mark.parametrize("allow", [(), ("qa",)], ids=["cohort-path", "listed-path"])
def test_lone_surrogate_user_answers_the_default_without_crashing(allow: tuple[str, ...]) -> None:
    # mmh3 given such a str segfaults the interpreter; the SDK must answer the default instead.
    flag = Flag(key="F", salt="F", state=State.ROLLING, percent_bp=10_000, allow=allow, version=1)
    client = offline_client(flag)
    handle = client.flag("F", default=True)
    assert handle.is_enabled(SURROGATE) is True
    assert client.flag("F").is_enabled(SURROGATE) is False
    with handle.track(SURROGATE) as enabled:
        assert enabled is True
    handle.record(SURROGATE, ok=False)
    assert handle.is_enabled("ünïcode-user") is True  # valid non-ASCII still buckets


def test_non_ascii_ids_bucket_like_the_formula() -> None:
    flag = Flag(key="F", salt="F", state=State.ROLLING, percent_bp=5000, version=1)
    client = offline_client(flag)
    for user in ("Ünïcödé", "用户-七", "🚀rocket", "plain"):
        assert client.flag("F").is_enabled(user) is (bucket("F", user) < 5000)


def test_core_bucket_raises_instead_of_crashing() -> None:
    with pytest.raises(UnicodeEncodeError):
        bucket("F", SURROGATE)


def test_services_refuse_unstorable_text(services: Services) -> None:
    services.flags.create("F", actor="t", stages=[{"percent": 10}])
    services.flags.advance("F", actor="t")
    before = len(services.flags.audit("F"))
    with pytest.raises(ValidationError, match="user"):
        services.flags.evaluate("F", SURROGATE)
    with pytest.raises(ValidationError, match="reason"):
        services.flags.pause("F", actor="t", reason=SURROGATE)
    with pytest.raises(ValidationError, match="actor"):
        services.flags.pause("F", actor=SURROGATE)
    with pytest.raises(ValidationError, match="reason"):
        services.flags.kill("F", reason="x" * 5000, actor="t")  # would not read back
    with pytest.raises(ValidationError, match="salt"):
        services.flags.create("G", actor="t", salt=SURROGATE)
    assert len(services.flags.audit("F")) == before
    assert services.flags.get("F").state is State.ROLLING


def test_sdk_defaults_are_bools_and_hostile_ids_never_raise() -> None:
    class Hostile(str):
        def isascii(self) -> bool:
            raise ValueError("no")

    class Unhashable:
        def __hash__(self) -> int:
            raise ValueError("no")

        def __str__(self) -> str:
            return "y"

    client = offline_client(
        Flag(key="F", salt="F", state=State.ROLLING, percent_bp=5000, allow=("a",), version=1)
    )
    assert client.flag("UNKNOWN", None).is_enabled("u") is False  # type: ignore[arg-type]
    assert client.is_enabled("UNKNOWN", "u", default="yes") is True  # type: ignore[arg-type]
    assert client.flag("UNKNOWN", default=[]).is_enabled("u") is False  # type: ignore[arg-type]
    # An odd id answers as its text would: "x" is out of the 50% cohort, "y" in it.
    for user, expected in ((Hostile("x"), False), (Unhashable(), True)):
        assert (bucket("F", str(user)) < 5000) is expected
        assert client.flag("F").is_enabled(user) is expected
        with client.flag("F").track(user) as enabled:
            assert enabled is expected


@pytest.mark.parametrize(
    "content",
    [
        '{"format": "rollout-bootstrap", "flags": 5}',
        "[" * 100_000,
        '{"format": "rollout-bootstrap", "flags": [{"key": "F", "gates": [{"metric": '
        '"error_rate", "warn": 0.1, "critical": 1%s}]}]}' % ("0" * 400),
    ],
    ids=["not-a-list", "deep", "huge-number"],
)
def test_a_damaged_bootstrap_file_never_stops_the_application(
    tmp_path: Path, content: str, dead_redis_url: str
) -> None:
    boot = tmp_path / "boot.json"
    boot.write_text(content)
    with RolloutClient(
        dead_redis_url, bootstrap_file=boot, socket_timeout=0.2, environ={}
    ) as client:
        assert client.is_enabled("F", "u") is False
