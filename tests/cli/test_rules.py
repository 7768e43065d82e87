"""Rules from the CLI: apply a TOML file with rules, show them, check --attr k=v / k:=JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollout import RolloutClient
from rollout.services.container import Services
from rollout.storage.redis_process import RedisProcess
from tests.cli.conftest import Cli, write

FILE = """
[flags.F]
description = "rules"
rules = [
  { attribute = "email", op = "ends_with", values = ["@example.com"], serve = "on" },
  { attribute = "age", op = "lt", values = [18], serve = "off" },
  { attribute = "beta", op = "in", values = [true], serve = "on" },
]
stages = [{ percent = 50 }]
"""


@pytest.fixture
def ruled(run: Cli, tmp_path: Path) -> Cli:
    run.ok("apply", write(tmp_path / "flags.toml", FILE))
    return run


def test_apply_sets_rules_and_show_renders_them(ruled: Cli, services: Services) -> None:
    assert [r.attribute for r in services.flags.get("F").rules] == ["email", "age", "beta"]
    out = ruled.ok("show", "F").stdout
    assert "rules:" in out
    assert "ends_with" in out and '"@example.com"' in out and "semver" not in out
    assert ruled.json("show", "F")["rules"][1] == {
        "attribute": "age",
        "op": "lt",
        "values": [18],
        "serve": "off",
    }


def test_check_takes_string_and_typed_attributes(ruled: Cli) -> None:
    assert ruled.json("check", "F", "u1", "--attr", "email=a@example.com")["reason"] == "rule"
    adult = ruled.json("check", "F", "u1", "--attr", "age:=42")
    assert adult["reason"] == "out_of_cohort"
    child = ruled.json("check", "F", "u1", "--attr", "age:=12")
    assert (child["enabled"], child["reason"]) == (False, "rule")
    both = ruled.json("check", "F", "u1", "--attr", "age:=12", "--attr", "email=a@example.com")
    assert (both["enabled"], both["reason"]) == (True, "rule")  # the first matching rule wins
    # "12" typed as k=v is a string, and a string is never less than a number.
    assert ruled.json("check", "F", "u1", "--attr", "age=12")["reason"] == "out_of_cohort"
    assert ruled.json("check", "F", "u1", "--attr", "beta:=true")["enabled"] is True
    assert ruled.json("check", "F", "u1", "--attr", "beta=true")["reason"] == "out_of_cohort"
    assert ruled.json("check", "F", "u1", "--attr", "email=x=y@example.com")["reason"] == "rule"
    assert "reason=rule" in ruled.ok("check", "F", "u1", "--attr", "beta:=true").stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--attr", "age:=forty"), "not JSON"),
        (("--attr", "age:=NaN"), "not JSON"),
        (("--attr", "email"), "NAME=VALUE"),
        (("--attr", "1x=a"), "attr.1x"),
        (("--attr", "age:=[1]"), "attr.age"),
        (("--attr", "a=1", "--attr", "a=2"), "twice"),
    ],
)
def test_check_refuses_bad_attributes_with_a_usage_error(
    ruled: Cli, args: tuple[str, ...], says: str
) -> None:
    assert says in ruled.fails(2, "check", "F", "u1", *args)


def test_check_agrees_with_the_sdk(
    real_services: Services, redis_server_flushed: RedisProcess, tmp_path: Path
) -> None:
    """The CLI over the same Redis as an SDK client: the same answer for every context."""
    ruled = Cli(real_services)
    ruled.ok("apply", write(tmp_path / "flags.toml", FILE))
    ruled.ok("advance", "F")
    contexts = [
        ("email=a@example.com", {"email": "a@example.com"}),
        ("age:=12", {"age": 12}),
        ("age:=12.5", {"age": 12.5}),
        ("beta:=true", {"beta": True}),
        ("beta:=false", {"beta": False}),
        ("plan=team", {"plan": "team"}),
        ("age:=null", {"age": None}),
    ]
    with RolloutClient(redis_server_flushed.url, environ={}) as client:
        assert client.wait_synced()
        for i in range(40):
            user = f"user-{i}"
            for arg, context in contexts:
                answer = ruled.json("check", "F", user, "--attr", arg)
                sdk = client.evaluate("F", user, attributes=context)
                assert (answer["enabled"], answer["reason"]) == (sdk.enabled, str(sdk.reason))
                assert client.is_enabled("F", user, attributes=context) is sdk.enabled
