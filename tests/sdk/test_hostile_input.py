"""User ids and texts that once crashed the process or leaked past validation."""

from __future__ import annotations

import pytest

from rollout import RolloutClient
from rollout.core.bucketing import bucket
from rollout.core.errors import ValidationError
from rollout.core.model import Flag, State
from rollout.wiring import Services

SURROGATE = "user-\ud800"


def offline_client(flag: Flag) -> RolloutClient:
    client = RolloutClient("redis://127.0.0.1:9/0", start=False, environ={})
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
