"""Targeting rules in the SDK: compiled answers agree with core.evaluate, rule answers join no
arm, odd contexts never raise, and a real client follows rules written through the services."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollout import RolloutClient
from rollout.core.bucketing import bucket
from rollout.core.evaluation import ARM_OF_REASON, Reason, evaluate
from rollout.core.model import Flag, State
from rollout.core.rules import parse_rules
from rollout.sdk.compiled import CONTROL, TREATMENT, compile_flag
from rollout.services.container import Services
from rollout.storage.keys import Keys
from tests.support import store_malformed, wait_until

RULES = [
    {"attribute": "email", "op": "ends_with", "values": ["@example.com"], "serve": "on"},
    {"attribute": "plan", "op": "in", "values": ["enterprise", "team"], "serve": "on"},
    {"attribute": "app_version", "op": "semver_lt", "values": ["2.0.0"], "serve": "off"},
    {"attribute": "age", "op": "gte", "values": [65], "serve": "off"},
]


class Liar:
    """Claims to be a str through ``__class__`` (as a mock with spec=str does)."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return str

    def endswith(self, *args: object) -> bool:
        return True

    def __hash__(self) -> int:
        return hash("team")

    def __eq__(self, other: object) -> bool:
        return True


contexts = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(["email", "plan", "app_version", "age", "other"]),
        st.one_of(
            st.sampled_from(["a@example.com", "b@else.org", "team", "free", "1.9", "2.1.0"]),
            st.integers(0, 100),
            st.booleans(),
            st.none(),
            st.lists(st.text(max_size=2), max_size=2),
            st.builds(Liar),
        ),
        max_size=5,
    ),
    st.sampled_from([[], ["email"], "email=a@example.com", 42]),  # not mappings: ignored
)
flags = st.builds(
    lambda rules, percent, allow, deny: Flag(
        key="F",
        salt="F",
        state=State.ROLLING,
        percent_bp=percent,
        rules=parse_rules(rules),
        allow=tuple(allow),
        deny=tuple(deny),
    ),
    st.lists(st.sampled_from(RULES), min_size=1, max_size=4),
    st.integers(0, 10_000),
    st.lists(st.sampled_from(["a", "b"]), max_size=2),
    st.lists(st.sampled_from(["b", "c"]), max_size=2),
)


@settings(max_examples=400, deadline=None)
@given(
    flag=flags,
    default=st.booleans(),
    user=st.one_of(st.sampled_from(["a", "b", "c", "d", "user-9"]), st.integers(0, 99)),
    context=contexts,
)
def test_compiled_rules_match_evaluate(
    flag: Flag, default: bool, user: object, context: Any
) -> None:
    compiled = compile_flag(flag, None, default, "F")
    mapping = context if isinstance(context, dict) else None
    expected = evaluate(flag, str(user), default=default, attributes=mapping)
    arm = ARM_OF_REASON.get(expected.reason)
    before = compiled.exposures()
    assert compiled.check(user, context) is expected.enabled
    code = compiled.assign(user, context)
    assert (code & 1 == 1) is expected.enabled
    assert {CONTROL: "control", TREATMENT: "treatment"}.get(code) == arm
    grew = [after - b for after, b in zip(compiled.exposures(), before, strict=True)]
    assert grew == ([0, 0] if arm is None else [arm == "control", arm == "treatment"])


@settings(max_examples=200, deadline=None)
@given(
    percent=st.integers(0, 10_000),
    allow=st.booleans(),
    user=st.text(max_size=8),
    context=contexts,
)
def test_a_flag_without_rules_ignores_any_context(
    percent: int, allow: bool, user: str, context: Any
) -> None:
    flag = Flag(
        key="F", salt="F", state=State.ROLLING, percent_bp=percent, allow=("x",) if allow else ()
    )
    compiled = compile_flag(flag, None, False, "F")
    assert compiled.check(user, context) is compiled.check(user)
    assert compiled.assign(user, context) == compiled.assign(user)


def test_a_hostile_context_answers_without_raising() -> None:
    class Exploding(dict[str, object]):
        def get(self, *args: object, **kwargs: object) -> object:
            raise RuntimeError("no")

        def __bool__(self) -> bool:
            return True

    class Falsy:
        def __bool__(self) -> bool:
            raise RuntimeError("no")

    flag = Flag(key="F", salt="F", state=State.ROLLING, percent_bp=10_000, rules=parse_rules(RULES))
    for default in (True, False):
        compiled = compile_flag(flag, None, default, "F")
        assert compiled.check("u", Exploding()) is default
        assert compiled.check("u", Falsy()) is True  # ignored: the bucket at 100% answers
        assert compiled.assign("u", Exploding()) == (1 if default else 0)


def test_values_no_rule_can_use_are_reported_to_the_hook() -> None:
    heard: list[tuple[str, object]] = []
    flag = Flag(key="F", salt="F", state=State.ROLLING, rules=parse_rules(RULES))
    compiled = compile_flag(flag, None, False, "F", lambda a, v: heard.append((a, v)))
    assert compiled.check("u", {"email": ["a@example.com"], "plan": "free"}) is False
    assert heard == [("email", ["a@example.com"])]


# -- a real client --------------------------------------------------------------------------


def test_a_client_follows_rules_and_records_only_bucketed_answers(
    real_services: Services, real_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    real_services.flags.create("F", actor="t", rules=RULES[:2], stages=[{"percent": 50}])
    real_services.flags.advance("F", actor="t")
    tester = {"email": "qa@example.com"}
    outsider = next(u for u in (f"user-{i}" for i in range(1000)) if bucket("F", u) >= 5000)
    with RolloutClient(real_url, flush_interval=60, environ={}) as client:
        assert client.wait_synced()
        flag = client.flag("F")
        assert flag.is_enabled(outsider, tester)
        assert not flag.is_enabled(outsider)
        assert client.is_enabled("F", outsider, False, {"plan": "team"})
        assert client.is_enabled("F", outsider, attributes={"plan": "team"})
        result = client.evaluate("F", outsider, attributes=tester)
        assert (result.enabled, result.reason) == (True, Reason.RULE)
        assert flag.evaluate(outsider, tester).reason is Reason.RULE
        assert client.evaluate("F", outsider).reason is Reason.OUT_OF_COHORT
        with flag.track(outsider, tester) as enabled:
            assert enabled
        flag.record(outsider, ok=False, attributes=tester)  # a rule answer: no arm
        with flag.track(outsider) as enabled:
            assert not enabled
        flag.record(outsider, ok=False)
        # Values no rule can use: ignored and logged once per flag and attribute.
        with caplog.at_level(logging.WARNING, logger="rollout.sdk"):
            for _ in range(3):
                assert not flag.is_enabled(outsider, {"email": ["qa@example.com"]})
                assert not client.is_enabled("F", outsider, attributes={"plan": {"team": 1}})
        ignored = [r.getMessage() for r in caplog.records if "rules ignore it" in r.getMessage()]
        assert len(ignored) == 2 and all("F" in m for m in ignored)
        client.flush()
        evidence = real_services.gates.evidence(real_services.flags.get("F")).stage
        assert (evidence.treatment.samples, evidence.control.samples) == (0, 2)
        assert evidence.control.errors == 1
        assert evidence.treatment.exposures == 0 and evidence.control.exposures == 1 + 3 * 2

        # A change of rules reaches the client.
        real_services.flags.update("F", {"rules": []}, actor="t")
        assert wait_until(lambda: not flag.is_enabled(outsider, tester))


def test_a_malformed_stored_rule_answers_the_default_and_names_the_key(
    real_services: Services,
    real_url: str,
    real_redis: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real_services.flags.create("BAD", actor="t", rules=RULES[:1], allow=["u"])
    real_services.flags.create("GOOD", actor="t", rules=RULES[:1])
    stored = real_redis.hget(Keys().flag("BAD"), "d")
    assert '"ends_with"' in stored
    store_malformed(real_redis, "BAD", stored.replace('"ends_with"', '"matches"'), version=2)
    tester = {"email": "a@example.com"}
    with RolloutClient(real_url, environ={}) as client:
        assert client.wait_synced()
        assert client.is_enabled("GOOD", "x", attributes=tester)
        assert not client.is_enabled("BAD", "u", attributes=tester)
        assert client.is_enabled("BAD", "x", default=True, attributes=tester)
    reported = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("BAD" in m and "rules[0].op" in m for m in reported)
