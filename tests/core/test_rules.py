"""Targeting rules (DESIGN §2.1): every operator, missing attributes, type mismatches, semver."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollout.core.errors import ValidationError
from rollout.core.evaluation import ARM_OF_REASON, Reason, evaluate
from rollout.core.model import Flag, State
from rollout.core.rules import (
    Op,
    Rule,
    match,
    parse_rules,
    parse_semver,
    rule_to_dict,
    valid_attribute,
)
from rollout.core.rules_compiled import compile_rules
from rollout.core.schema import flag_from_dict, flag_to_dict, parse_config


def rule(attribute: str, op: str, values: list[Any], serve: str = "on") -> Rule:
    return parse_rules([{"attribute": attribute, "op": op, "values": values, "serve": serve}])[0]


class Weird:
    """A context value that is no string, number or boolean."""


# (op, values, attribute value, matches?)
CASES: list[tuple[str, list[Any], object, bool]] = [
    # in / not_in: any scalar, numbers as numbers, booleans apart from numbers
    ("in", ["enterprise", "team"], "team", True),
    ("in", ["enterprise", "team"], "Team", False),  # case-sensitive
    ("in", ["enterprise", "team"], "free", False),
    ("in", [1, 2], 1.0, True),
    ("in", [1.5], 1.5, True),
    ("in", [1], True, False),  # True is not the number 1
    ("in", [True], 1, False),
    ("in", [True], True, True),
    ("in", [False], False, True),
    ("in", ["1"], 1, False),  # a string is not a number
    ("in", [1], "1", False),
    ("in", ["a"], Weird(), False),
    ("in", ["a"], ["a"], False),
    ("not_in", ["enterprise", "team"], "free", True),
    ("not_in", ["enterprise", "team"], "team", False),
    ("not_in", [1], 2, True),
    ("not_in", [1], 1.0, False),
    ("not_in", ["a"], 5, True),  # present and not in the list
    ("not_in", [True], False, True),
    ("not_in", ["a"], Weird(), False),  # not a scalar: ignored, never matches
    ("not_in", ["a"], {"x": 1}, False),
    # string operators: a list, any of it; strings only
    ("starts_with", ["qa-", "dev-"], "dev-bob", True),
    ("starts_with", ["qa-"], "QA-bob", False),
    ("starts_with", ["qa-"], "bob-qa-", False),
    ("starts_with", ["1"], 12, False),
    ("ends_with", ["@example.com"], "a@example.com", True),
    ("ends_with", ["@example.com"], "a@EXAMPLE.com", False),
    ("ends_with", ["@example.com", "@example.org"], "b@example.org", True),
    ("ends_with", ["@example.com"], "a@example.com.evil", False),
    ("ends_with", ["true"], True, False),
    ("contains", ["beta"], "1.0-beta-2", True),
    ("contains", ["x", "beta"], "beta", True),
    ("contains", ["Beta"], "beta", False),
    ("contains", ["a"], Weird(), False),
    # comparisons: one number; anything else never matches
    ("lt", [18], 17, True),
    ("lt", [18], 18, False),
    ("lt", [18], 17.99, True),
    ("lte", [18], 18, True),
    ("lte", [18], 18.0001, False),
    ("gt", [18], 19, True),
    ("gt", [18], 18, False),
    ("gt", [0.5], 1, True),
    ("gte", [18], 18, True),
    ("gte", [18], 17, False),
    ("gte", [2**62], 2**62 + 1, True),  # ints compare exactly, not as floats
    ("gt", [18], "19", False),  # a string is not a number
    ("gt", [0], True, False),  # a boolean is not a number
    ("lt", [1], False, False),
    ("gt", [0], float("nan"), False),
    ("lt", [0], float("nan"), False),
    ("gt", [0], float("inf"), True),
    ("lt", [1], Weird(), False),
    # semver: one version; strings only
    ("semver_gte", ["2.0.0"], "2.0.0", True),
    ("semver_gte", ["2.0.0"], "2.0.1", True),
    ("semver_gte", ["2.0.0"], "10.0.0", True),  # numbers, not text: 10 > 2
    ("semver_gte", ["2.0.0"], "1.99.99", False),
    ("semver_gte", ["2.0.0"], "2.0.0-rc.1", False),  # a prerelease comes before its release
    ("semver_gte", ["2.0.0-rc.1"], "2.0.0-rc.2", True),
    ("semver_gte", ["2.0.0"], "v2", True),  # leading v, missing parts are 0
    ("semver_gte", ["2"], "2.0.0", True),
    ("semver_gte", ["2.0.0"], "2.0.0+build.7", True),  # build metadata is ignored
    ("semver_gte", ["2.0.0"], "2.0.0.1", False),  # not a version: never matches
    ("semver_gte", ["2.0.0"], "latest", False),
    ("semver_gte", ["2.0.0"], "", False),
    ("semver_gte", ["2.0.0"], 3, False),
    ("semver_gte", ["2.0.0"], Weird(), False),
    ("semver_lt", ["2.0.0"], "1.9.9", True),
    ("semver_lt", ["2.0.0"], "2.0.0-alpha", True),
    ("semver_lt", ["2.0.0"], "2.0.0", False),
    ("semver_lt", ["2.0.0"], "2.0.0+build", False),
    ("semver_lt", ["1.0.0-beta.11"], "1.0.0-beta.2", True),  # numeric identifiers as numbers
    ("semver_lt", ["1.0.0-beta"], "1.0.0-alpha.beta", True),
    ("semver_lt", ["1.0.0-alpha.1"], "1.0.0-alpha", True),  # shorter sorts first
    ("semver_lt", ["1.0.0-alpha"], "1.0.0-1", True),  # numeric before alphanumeric
    ("semver_lt", ["2.0.0"], "nope", False),
]


@pytest.mark.parametrize(("op", "values", "value", "expected"), CASES)
def test_operator(op: str, values: list[Any], value: object, expected: bool) -> None:
    r = rule("a", op, values)
    assert match((r,), {"a": value}) is (True if expected else None)
    assert compile_rules((r,))({"a": value}) is (True if expected else None)
    off = rule("a", op, values, serve="off")
    assert match((off,), {"a": value}) is (False if expected else None)


@pytest.mark.parametrize("op", [o.value for o in Op])
def test_a_missing_attribute_never_matches(op: str) -> None:
    values: list[Any] = [1] if op in ("lt", "lte", "gt", "gte") else ["1.0.0"]
    r = rule("plan", op, values)
    for attributes in ({}, {"other": "1.0.0"}, {"plan": None}, None):
        assert match((r,), attributes) is None
    assert compile_rules((r,))({"plan": None}) is None


def test_first_matching_rule_wins_in_order() -> None:
    rules = parse_rules(
        [
            {"attribute": "plan", "op": "in", "values": ["free"], "serve": "off"},
            {"attribute": "email", "op": "ends_with", "values": ["@example.com"], "serve": "on"},
            {"attribute": "email", "op": "contains", "values": ["@"], "serve": "off"},
        ]
    )
    first = compile_rules(rules)
    for attributes, expected in [
        ({"plan": "free", "email": "a@example.com"}, False),
        ({"plan": "team", "email": "a@example.com"}, True),
        ({"email": "a@other.org"}, False),
        ({"email": "nobody"}, None),
        ({}, None),
    ]:
        assert match(rules, attributes) is expected
        assert first(attributes) is expected


def test_non_scalar_values_are_reported_once_per_test_and_never_match() -> None:
    heard: list[tuple[str, object]] = []
    rules = parse_rules(
        [
            {"attribute": "plan", "op": "in", "values": ["team"], "serve": "on"},
            {"attribute": "age", "op": "gt", "values": [1], "serve": "on"},
            {"attribute": "email", "op": "ends_with", "values": ["x"], "serve": "on"},
        ]
    )
    first = compile_rules(rules, lambda name, value: heard.append((name, value)))
    assert first({"plan": ["team"], "age": "5", "email": 7}) is None
    # A string age and a numeric email are type mismatches, not unusable values.
    assert heard == [("plan", ["team"])]


SEMVER_ORDER = [
    "0.0.1",
    "0.9",
    "1.0.0-0",
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.1",
    "v2.0.0-rc.1",
    "2",
    "2.10.0",
    "10.0.0",
]


def test_semver_orders_as_semver_2() -> None:
    keys = [parse_semver(v) for v in SEMVER_ORDER]
    assert None not in keys
    assert keys == sorted(keys)  # type: ignore[type-var]
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize(
    ("a", "b"), [("1", "1.0.0"), ("v1.2", "1.2.0"), ("V3", "3.0.0"), ("1.0.0+x.1", "1.0.0")]
)
def test_semver_equivalent_spellings(a: str, b: str) -> None:
    assert parse_semver(a) == parse_semver(b) is not None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "v",
        "1.",
        ".1",
        "1..2",
        "1.2.3.4",
        "1.2.3-",
        "1.2.3-a..b",
        "1.2.3-a_b",
        "1.2.3+",
        "1.2.3+a+b",
        "a.b.c",
        "1.2.x",
        "-1.0.0",
        "1.2.3 ",
        " 1.2.3",
        "١.٢.٣",  # other scripts' digits are not version numbers
        "1" * 19,
        "1.0.0-" + "a" * 300,
    ],
)
def test_semver_refuses_what_is_no_version(text: str) -> None:
    assert parse_semver(text) is None


def _reference_cmp(a: tuple[list[int], list[str]], b: tuple[list[int], list[str]]) -> int:
    """SemVer 2.0 §11 written out as the spec says, to check the tuple keys against."""
    if a[0] != b[0]:
        return -1 if a[0] < b[0] else 1
    pa, pb = a[1], b[1]
    if not pa or not pb:
        return (len(pb) > 0) - (len(pa) > 0)  # no prerelease is the greater
    for x, y in zip(pa, pb, strict=False):
        if x == y:
            continue
        if x.isdigit() and y.isdigit():
            return -1 if int(x) < int(y) else 1
        if x.isdigit() != y.isdigit():
            return -1 if x.isdigit() else 1
        return -1 if x < y else 1
    return (len(pa) > len(pb)) - (len(pa) < len(pb))


_ident = st.one_of(
    st.integers(0, 30).map(str),
    st.text("abcXYZ-", min_size=1, max_size=4).filter(lambda s: not s.isdigit()),
)
_version = st.tuples(
    st.lists(st.integers(0, 12), min_size=3, max_size=3), st.lists(_ident, max_size=3)
)


def _text(v: tuple[list[int], list[str]]) -> str:
    core = ".".join(map(str, v[0]))
    return core + ("-" + ".".join(v[1]) if v[1] else "")


@settings(max_examples=500, deadline=None)
@given(_version, _version)
def test_semver_keys_agree_with_the_spec_ordering(a: Any, b: Any) -> None:
    ka, kb = parse_semver(_text(a)), parse_semver(_text(b))
    assert ka is not None and kb is not None
    assert (ka > kb) - (ka < kb) == _reference_cmp(a, b)


# -- validation ---------------------------------------------------------------------------------

GOOD = {"attribute": "email", "op": "ends_with", "values": ["@example.com"], "serve": "on"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"op": "regex"}, "rules[1].op"),
        ({"op": 3}, "rules[1].op"),
        ({"attribute": "1email"}, "rules[1].attribute"),
        ({"attribute": "e mail"}, "rules[1].attribute"),
        ({"attribute": ""}, "rules[1].attribute"),
        ({"attribute": "a" * 65}, "rules[1].attribute"),
        ({"attribute": "é"}, "rules[1].attribute"),
        ({"attribute": 5}, "rules[1].attribute"),
        ({"serve": "yes"}, "rules[1].serve"),
        ({"serve": True}, "rules[1].serve"),
        ({"values": "x"}, "rules[1].values"),
        ({"values": []}, "rules[1].values"),
        ({"values": ["x"] * 101}, "rules[1].values"),
        ({"op": "gt", "values": [1, 2]}, "rules[1].values"),
        ({"op": "semver_gte", "values": []}, "rules[1].values"),
        ({"op": "gt", "values": ["1"]}, "rules[1].values[0]"),
        ({"op": "gt", "values": [True]}, "rules[1].values[0]"),
        ({"op": "lt", "values": [float("nan")]}, "rules[1].values[0]"),
        ({"op": "lt", "values": [float("inf")]}, "rules[1].values[0]"),
        ({"op": "lt", "values": [10**30]}, "rules[1].values[0]"),
        ({"op": "semver_lt", "values": ["two"]}, "rules[1].values[0]"),
        ({"op": "semver_lt", "values": [2]}, "rules[1].values[0]"),
        ({"values": ["a", 1]}, "rules[1].values[1]"),
        ({"values": [""]}, "rules[1].values[0]"),
        ({"values": ["a\x1b[2J"]}, "rules[1].values[0]"),
        ({"values": ["\ud800"]}, "rules[1].values[0]"),
        ({"values": ["x" * 1025]}, "rules[1].values[0]"),
        ({"op": "in", "values": [None]}, "rules[1].values[0]"),
        ({"op": "in", "values": [["a"]]}, "rules[1].values[0]"),
        ({"extra": 1}, "rules[1]"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_rules([GOOD, {**GOOD, **change}])
    assert caught.value.field == field


@pytest.mark.parametrize("missing", ["attribute", "op", "values", "serve"])
def test_every_rule_field_is_required(missing: str) -> None:
    raw = {k: v for k, v in GOOD.items() if k != missing}
    with pytest.raises(ValidationError) as caught:
        parse_rules([raw])
    assert caught.value.field == f"rules[0].{missing}"


def test_rule_list_limits() -> None:
    assert len(parse_rules([GOOD] * 50)) == 50
    assert len(parse_rules([{**GOOD, "values": ["x"] * 100}])[0].values) == 100
    for bad in ([GOOD] * 51, "rules", GOOD, [5]):
        with pytest.raises(ValidationError) as caught:
            parse_rules(bad)
        assert caught.value.field in ("rules", "rules[0]")


def test_attribute_names() -> None:
    for name in ("email", "_x", "a.b-c_d", "A" * 64, "app_version"):
        assert valid_attribute(name)
    for name in ("", "1a", ".a", "-a", "a b", "a/b", "A" * 65, "ä", None, 1):
        assert not valid_attribute(name)


def test_rules_round_trip_through_the_flag_schema() -> None:
    raw = [
        GOOD,
        {"attribute": "plan", "op": "in", "values": ["team", 3, True], "serve": "off"},
        {"attribute": "age", "op": "gte", "values": [18.5], "serve": "on"},
        {"attribute": "app_version", "op": "semver_gte", "values": ["v2.0"], "serve": "on"},
    ]
    config = parse_config({"rules": raw})
    flag = Flag(key="F", salt="F", rules=config["rules"])
    doc = flag_to_dict(flag)
    assert doc["rules"] == raw
    assert flag_from_dict(doc) == flag
    assert [rule_to_dict(r) for r in flag_from_dict(doc).rules] == raw


def test_a_stored_flag_with_a_malformed_rule_is_refused_naming_the_field() -> None:
    doc = flag_to_dict(Flag(key="F", salt="F"))
    doc["rules"] = [{**GOOD, "op": "matches"}]
    with pytest.raises(ValidationError) as caught:
        flag_from_dict(doc)
    assert caught.value.field == "rules[0].op"


# -- evaluation -----------------------------------------------------------------------------

LIVE = Flag(key="F", salt="F", state=State.ROLLING, percent_bp=5000)
TESTERS = parse_rules([GOOD])


def test_the_rule_step_sits_after_deny_and_allow_and_before_the_bucket() -> None:
    flag = LIVE.with_changes(rules=TESTERS, allow=("alice",), deny=("mallory",), percent_bp=0)
    inside = {"email": "x@example.com"}
    assert evaluate(flag, "mallory", attributes=inside).reason is Reason.DENIED
    assert evaluate(flag, "alice", attributes=inside).reason is Reason.ALLOWED
    answer = evaluate(flag, "bob", attributes=inside)
    assert (answer.enabled, answer.reason) == (True, Reason.RULE)
    assert evaluate(flag, "bob", attributes={"email": "x@else.org"}).reason is (
        Reason.OUT_OF_COHORT
    )
    assert evaluate(flag, "bob").reason is Reason.OUT_OF_COHORT
    killed = evaluate(
        flag.with_changes(state=State.KILLED), "bob", attributes=inside, override=True
    )
    assert (killed.enabled, killed.reason) == (False, Reason.KILLED)
    assert evaluate(flag, "bob", attributes=inside, override=False).reason is Reason.OVERRIDE


def test_a_rule_answer_reports_the_bucket_but_joins_no_arm() -> None:
    answer = evaluate(
        LIVE.with_changes(rules=TESTERS), "bob", attributes={"email": "a@example.com"}
    )
    assert answer.bucket is not None
    assert Reason.RULE not in ARM_OF_REASON


class Text(str):
    """A str subclass: the generated fast path takes exact str only, the matcher the rest."""


_scalar = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["a@example.com", "team", "2.0.0", "1.9.9-rc.1", "v3", "@", "x"]),
    st.sampled_from(["a@example.com", "team", "2.0.0", "1.9"]).map(Text),
    st.integers(-1000, 1000),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)
_context = st.dictionaries(
    st.sampled_from(["email", "plan", "age", "app_version", "x"]), _scalar, max_size=5
)
_rule = st.fixed_dictionaries(
    {
        "attribute": st.sampled_from(["email", "plan", "age", "app_version"]),
        "op": st.sampled_from([o.value for o in Op]),
        "serve": st.sampled_from(["on", "off"]),
    }
)


def _values_for(op: str) -> st.SearchStrategy[list[Any]]:
    if op in ("lt", "lte", "gt", "gte"):
        return st.lists(st.integers(-100, 100) | st.floats(-1e6, 1e6), min_size=1, max_size=1)
    if op in ("semver_lt", "semver_gte"):
        return st.sampled_from([["1.0.0"], ["2.0.0-rc.1"], ["v3"]])
    if op in ("in", "not_in"):
        return st.lists(st.text("abc@", min_size=1, max_size=5) | st.integers(0, 5), min_size=1)
    return st.lists(st.text("@.abcx", min_size=1, max_size=4), min_size=1, max_size=3)


_rules = st.lists(
    _rule.flatmap(lambda r: _values_for(r["op"]).map(lambda v: {**r, "values": v})), max_size=4
)


@settings(max_examples=300, deadline=None)
@given(
    rules=_rules,
    context=_context,
    user=st.text(min_size=1, max_size=8),
    percent=st.integers(0, 10_000),
)
def test_rule_answers_never_enter_an_arm(
    rules: list[Any], context: dict[str, Any], user: str, percent: int
) -> None:
    flag = LIVE.with_changes(rules=parse_rules(rules), percent_bp=percent)
    answer = evaluate(flag, user, attributes=context)
    served = match(flag.rules, context)
    assert compile_rules(flag.rules)(context) is served
    if served is not None:
        assert (answer.enabled, answer.reason) == (served, Reason.RULE)
        assert ARM_OF_REASON.get(answer.reason) is None
    else:
        assert answer == evaluate(flag.with_changes(rules=()), user)
        assert answer.reason in ARM_OF_REASON


@settings(max_examples=300, deadline=None)
@given(
    context=st.one_of(_context, st.none()),
    user=st.text(min_size=1, max_size=8),
    percent=st.integers(0, 10_000),
    allow=st.booleans(),
)
def test_a_flag_without_rules_answers_as_before_for_any_context(
    context: dict[str, Any] | None, user: str, percent: int, allow: bool
) -> None:
    flag = LIVE.with_changes(percent_bp=percent, allow=(user,) if allow else ())
    assert evaluate(flag, user, attributes=context) == evaluate(flag, user)
