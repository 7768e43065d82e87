"""RolloutProvider through the real OpenFeature API (openfeature-sdk), against a real Redis.

Every answer is compared with the SDK's own evaluation in the same process; events are
collected through the OpenFeature client's handlers, as an application would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason
from openfeature.provider import ProviderStatus
from openfeature.track import TrackingEventDetails

from rollout import RolloutClient
from rollout.core.bucketing import bucket
from rollout.openfeature import RolloutProvider
from rollout.services.container import Services
from rollout.storage.connection import client_for_url
from rollout.storage.redis_process import RedisProcess, free_port
from rollout.wiring import build_services
from tests.conftest import make_settings
from tests.support import wait_until

USERS = [f"user-{i}" for i in range(400)]
NewSdk = Callable[..., RolloutClient]


@pytest.fixture(autouse=True)
def _openfeature_reset() -> Iterator[None]:
    yield
    api.shutdown()  # providers shut down, handlers and context cleared: no test leaks into one


def start(provider: RolloutProvider) -> Any:
    """``api.set_provider`` as an application does, then wait for the SDK's PROVIDER_READY."""
    api.set_provider(provider)
    client = api.get_client()
    assert wait_until(lambda: client.get_provider_status() is ProviderStatus.READY, timeout=10)
    return client


class Events:
    """Every event of some kinds, in arrival order, from an OpenFeature client's handlers."""

    def __init__(self, client: Any, *kinds: ProviderEvent) -> None:
        self.seen: list[tuple[ProviderEvent, EventDetails]] = []
        self._lock = threading.Lock()
        for kind in kinds:
            client.add_handler(kind, lambda details, kind=kind: self._add(kind, details))

    def _add(self, kind: ProviderEvent, details: EventDetails) -> None:
        with self._lock:
            self.seen.append((kind, details))

    def kinds(self) -> list[ProviderEvent]:
        with self._lock:
            return [kind for kind, _ in self.seen]

    def changed(self) -> list[str]:
        with self._lock:
            return [
                key
                for kind, details in self.seen
                if kind is ProviderEvent.PROVIDER_CONFIGURATION_CHANGED
                for key in details.flags_changed or []
            ]


@pytest.fixture
def new_sdk(redis_server_flushed: RedisProcess) -> Callable[..., RolloutClient]:
    """A client on the shared Redis, made after the test wrote its flags, so that its first
    load holds them (no change from the channel still in flight when the test looks).
    Closed by the provider's shutdown (api.shutdown in the autouse fixture)."""

    def make(**options: Any) -> RolloutClient:
        return RolloutClient(redis_server_flushed.url, resync_interval=3600, **options)

    return make


def ctx(user: str | None = None, **attributes: Any) -> EvaluationContext:
    return EvaluationContext(targeting_key=user, attributes=attributes)


def test_split_answers_match_the_sdk_for_every_user(
    real_services: Services, new_sdk: NewSdk
) -> None:
    real_services.flags.create("F", actor="t")
    real_services.flags.set_percent("F", 37.5, actor="t")
    sdk = new_sdk()
    client = start(RolloutProvider(sdk))
    assert wait_until(lambda: sdk.known_flag("F") is not None)
    on = 0
    for user in USERS:
        details = client.get_boolean_details("F", False, ctx(user))
        expected = bucket("F", user) < 3750
        assert details.value is expected is sdk.is_enabled("F", user)
        assert details.reason == Reason.SPLIT
        assert details.variant == ("on" if expected else "off")
        assert details.error_code is None
        on += expected
    assert 0 < on < len(USERS)
    meta = client.get_boolean_details("F", False, ctx("u")).flag_metadata
    flag = sdk.known_flag("F")
    assert flag is not None
    assert meta == {"state": "rolling", "percent": 37.5, "version": flag.version}


def test_reasons_killed_override_allow_deny(real_services: Services, new_sdk: NewSdk) -> None:
    real_services.flags.create(
        "F",
        actor="t",
        allow=["qa-alice"],
        deny=["qa-bob"],
        stages=[{"percent": 10}, {"percent": 100}],
    )
    real_services.flags.advance("F", actor="t")
    real_services.flags.create("K", actor="t", allow=["qa-alice"])
    real_services.flags.set_percent("K", 100, actor="t")
    real_services.flags.kill("K", reason="broken", actor="t")
    real_services.flags.create("O", actor="t")
    sdk = new_sdk(environ={"O": "true"})
    client = start(RolloutProvider(sdk))

    allowed = client.get_boolean_details("F", False, ctx("qa-alice"))
    assert (allowed.value, allowed.variant, allowed.reason) == (True, "on", "TARGETING_MATCH")
    assert allowed.flag_metadata["stage"] == 0 and allowed.flag_metadata["percent"] == 10
    denied = client.get_boolean_details("F", True, ctx("qa-bob"))
    assert (denied.value, denied.variant, denied.reason) == (False, "off", "TARGETING_MATCH")

    killed = client.get_boolean_details("K", True, ctx("qa-alice"))
    assert (killed.value, killed.variant, killed.reason) == (False, "off", "DISABLED")
    assert killed.flag_metadata["state"] == "killed" and killed.error_code is None

    static = client.get_boolean_details("O", False, ctx("anyone"))
    assert (static.value, static.variant, static.reason) == (True, "on", "STATIC")


EXAMPLE_RULE = {"attribute": "email", "op": "ends_with", "values": ["@example.com"], "serve": "on"}


def test_a_rule_on_context_attributes_is_targeting_match_even_without_a_key(
    real_services: Services, new_sdk: NewSdk
) -> None:
    real_services.flags.create("F", actor="t", rules=[EXAMPLE_RULE])
    real_services.flags.set_percent("F", 50, actor="t")
    sdk = new_sdk()
    client = start(RolloutProvider(sdk))
    for user in ("a", "b", None):
        details = client.get_boolean_details("F", False, ctx(user, email="qa@example.com"))
        assert (details.value, details.variant, details.reason) == (True, "on", "TARGETING_MATCH")
    for user in USERS[:100]:
        context = ctx(user, email="someone@elsewhere.org", tags=["x"])
        details = client.get_boolean_details("F", False, context)
        expected = sdk.evaluate("F", user, attributes={"email": "someone@elsewhere.org"})
        assert details.value is expected.enabled and details.reason == "SPLIT"
    missing = client.get_boolean_details("F", True, ctx(None, email="x@elsewhere.org"))
    assert missing.error_code == ErrorCode.TARGETING_KEY_MISSING and missing.value is True


def test_unknown_flag_is_flag_not_found_with_the_callers_default(new_sdk: NewSdk) -> None:
    sdk = new_sdk()
    client = start(RolloutProvider(sdk))
    for default in (True, False):
        details = client.get_boolean_details("NOPE", default, ctx("u"))
        assert details.value is default
        assert details.error_code == ErrorCode.FLAG_NOT_FOUND
        assert details.reason == Reason.ERROR
        assert details.flag_metadata == {}


def test_without_a_targeting_key_only_a_split_percent_needs_one(
    real_services: Services, new_sdk: NewSdk
) -> None:
    flags = real_services.flags
    for key, percent in (("HALF", 50), ("NONE", 0), ("ALL", 100), ("GONE", 30)):
        flags.create(key, actor="t")
        if percent:
            flags.set_percent(key, percent, actor="t")
    flags.kill("GONE", reason="bad", actor="t")
    flags.create("OVER", actor="t")
    flags.set_percent("OVER", 50, actor="t")
    sdk = new_sdk(environ={"OVER": "false"})
    client = start(RolloutProvider(sdk))
    for context in (None, ctx(), ctx(""), ctx(None, plan="team")):
        half = client.get_boolean_details("HALF", True, context)
        assert half.value is True  # the caller's default
        assert half.error_code == ErrorCode.TARGETING_KEY_MISSING
        assert half.flag_metadata["percent"] == 50
        for key, value, reason in (
            ("NONE", False, "SPLIT"),
            ("ALL", True, "SPLIT"),
            ("GONE", False, "DISABLED"),
            ("OVER", False, "STATIC"),
        ):
            details = client.get_boolean_details(key, not value, context)
            assert (details.value, details.reason, details.error_code) == (value, reason, None)


def test_other_types_are_a_type_mismatch(real_services: Services, new_sdk: NewSdk) -> None:
    real_services.flags.create("F", actor="t")
    sdk = new_sdk()
    client = start(RolloutProvider(sdk))
    for call, default in (
        (client.get_string_details, "x"),
        (client.get_integer_details, 3),
        (client.get_float_details, 1.5),
        (client.get_object_details, {"a": 1}),
    ):
        details = call("F", default, ctx("u"))
        assert details.value == default
        assert details.error_code == ErrorCode.TYPE_MISMATCH


def test_configuration_changed_names_the_flags_that_changed(
    real_services: Services, new_sdk: NewSdk
) -> None:
    real_services.flags.create("F", actor="t")
    real_services.flags.create("G", actor="t")
    sdk = new_sdk()
    client = start(RolloutProvider(sdk))
    events = Events(client, ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)
    real_services.flags.set_percent("F", 20, actor="t")
    assert wait_until(lambda: events.changed() == ["F"])
    assert client.get_boolean_details("F", False, ctx("u")).flag_metadata["percent"] == 20
    real_services.flags.delete("G", actor="t")
    assert wait_until(lambda: events.changed() == ["F", "G"])
    assert client.get_boolean_details("G", False, ctx("u")).error_code == "FLAG_NOT_FOUND"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server of this test's own, which it stops and starts (never the shared one)."""
    server = RedisProcess(tmp_path / "redis", port=free_port())
    server.start()
    yield server
    server.stop()


def own_services(server: RedisProcess) -> tuple[Services, Any]:
    redis_client = client_for_url(server.url)
    return build_services(make_settings(), redis_client=redis_client), redis_client


def test_outage_is_stale_with_last_known_values_then_ready(own_redis: RedisProcess) -> None:
    services, redis_client = own_services(own_redis)
    services.flags.create("F", actor="t")
    services.flags.set_percent("F", 50, actor="t")
    sdk = RolloutClient(own_redis.url, resync_interval=3600, socket_timeout=0.5)
    client = start(RolloutProvider(sdk))
    events = Events(client, ProviderEvent.PROVIDER_STALE, ProviderEvent.PROVIDER_READY)
    before = [client.get_boolean_value("F", False, ctx(u)) for u in USERS]
    assert wait_until(lambda: events.kinds() == [ProviderEvent.PROVIDER_READY])  # immediate
    redis_client.close()
    own_redis.stop()
    assert wait_until(lambda: client.get_provider_status() is ProviderStatus.STALE, timeout=10)
    # Handlers run on the OpenFeature SDK's own pool, a moment after the status changed.
    ready, stale = ProviderEvent.PROVIDER_READY, ProviderEvent.PROVIDER_STALE
    assert wait_until(lambda: events.kinds() == [ready, stale])
    assert [client.get_boolean_value("F", False, ctx(u)) for u in USERS] == before
    own_redis.start()
    assert wait_until(lambda: client.get_provider_status() is ProviderStatus.READY, timeout=15)
    assert wait_until(lambda: events.kinds() == [ready, stale, ready])


def test_initialize_during_an_outage_is_not_fatal(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path / "redis", port=free_port())  # not started yet
    provider = RolloutProvider(
        redis_url=server.url, init_timeout=0.5, socket_timeout=0.5, resync_interval=3600
    )
    api.set_provider(provider)
    client = api.get_client()
    assert wait_until(lambda: client.get_provider_status() is ProviderStatus.STALE, timeout=10)
    details = client.get_boolean_details("F", True, ctx("u"))
    assert details.value is True and details.error_code == ErrorCode.FLAG_NOT_FOUND
    server.start()
    try:
        services, redis_client = own_services(server)
        services.flags.create("F", actor="t")
        redis_client.close()
        assert wait_until(lambda: client.get_provider_status() is ProviderStatus.READY, 15)
        assert wait_until(lambda: client.get_boolean_details("F", True, ctx("u")).value is False)
    finally:
        api.shutdown()
        server.stop()


def test_a_bad_setting_is_fatal() -> None:
    api.set_provider(RolloutProvider(redis_url="http://not-redis:6379"))
    client = api.get_client()
    assert wait_until(lambda: client.get_provider_status() is ProviderStatus.FATAL)
    details = client.get_boolean_details("F", True, ctx("u"))
    assert details.value is True and details.error_code == ErrorCode.PROVIDER_FATAL


def test_shutdown_closes_the_client_and_is_idempotent(
    real_services: Services, new_sdk: NewSdk
) -> None:
    real_services.flags.create("F", actor="t")
    sdk = new_sdk()
    provider = RolloutProvider(sdk)
    start(provider)
    provider.shutdown()
    provider.shutdown()
    real_services.flags.set_percent("F", 100, actor="t")
    # A closed client follows nothing: a change long past the channel's delay is not seen.
    assert not wait_until(lambda: sdk.is_enabled("F", "u"), timeout=0.5)
    built = RolloutProvider(redis_url=sdk.settings.redis_url)
    start(built)
    assert built.client is not None
    built.shutdown()
    built.shutdown()
    assert built.client is None


def test_track_observes_the_value_on_every_flag_gating_on_it(
    real_services: Services, new_sdk: NewSdk, real_redis: Any
) -> None:
    gate = {"metric": "value:improvement_delta", "warn": -0.02, "critical": -0.05}
    plan = {"stages": [{"percent": 50}]}
    real_services.flags.create("V", actor="t", gates=[gate], **plan)
    real_services.flags.create("W", actor="t", gates=[gate], **plan)
    real_services.flags.create("F", actor="t", **plan)  # no value gate: never observed
    rule = {"attribute": "plan", "op": "in", "values": ["team"], "serve": "on"}
    real_services.flags.create("R", actor="t", gates=[gate], rules=[rule], **plan)
    for key in ("V", "W", "F", "R"):
        real_services.flags.advance(key, actor="t")
    sdk = new_sdk()
    client = start(RolloutProvider(sdk))
    for user in USERS[:20]:
        client.track("improvement_delta", ctx(user), TrackingEventDetails(value=0.12))
        client.track("improvement_delta", ctx(user, plan="team"), TrackingEventDetails(value=1))
        client.track("improvement_delta", ctx(user))  # no value: nothing
        client.track("other_value", ctx(user), TrackingEventDetails(value=5.0))  # no such gate
    client.track("improvement_delta", None, TrackingEventDetails(value=0.5))  # no targeting key
    client.track("improvement_delta")
    sdk.flush()

    def values(key: str) -> dict[str, Any]:
        stage = real_services.gates.evidence(real_services.flags.get(key)).stage
        return {arm: dict(getattr(stage, arm).values) for arm in ("control", "treatment")}

    for key in ("V", "W"):
        seen = values(key)
        counts = {n: m.n for arm in seen.values() for n, m in arm.items()}
        assert set(counts) == {"improvement_delta"}
        # Each user's two observations in its own arm, the value of each track call.
        total = sum(arm["improvement_delta"].n for arm in seen.values() if arm)
        assert total == 40
        treated = [u for u in USERS[:20] if sdk.evaluate(key, u).reason == "in_cohort"]
        if treated:
            t = seen["treatment"]["improvement_delta"]
            assert (t.n, t.mean) == (2 * len(treated), pytest.approx((0.12 + 1) / 2))
    # A rule's answer joins no arm: the plan=team observations are not in R's evidence.
    seen = values("R")
    assert sum(arm["improvement_delta"].n for arm in seen.values() if arm) == 20
    assert values("F") == {"control": {}, "treatment": {}}
