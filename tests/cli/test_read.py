"""list, show, check, audit: tables by default, DESIGN field names with --json."""

from __future__ import annotations

import json
from typing import Any

from rollout.core.bucketing import bucket
from rollout.core.schema import FLAG_FIELDS, flag_to_dict
from rollout.services.container import Services
from tests.cli.conftest import ACTOR, Cli, audit_count
from tests.support import store_malformed

STAGES = [{"percent": 10, "bake": "1h"}, {"percent": 50}, {"percent": 100}]
GATES = [{"metric": "error_rate", "warn": 0.05, "critical": 0.1}]


def make_flag(services: Services, key: str = "F", **config: Any) -> None:
    services.flags.create(key, actor="setup", **config)


def test_list_empty_and_with_flags(run: Cli, services: Services) -> None:
    assert run.ok("list").stdout.strip() == "no flags"
    assert run.json("list") == []
    make_flag(services, "B_FLAG", stages=STAGES)
    make_flag(services, "A_FLAG")
    services.flags.advance("B_FLAG", actor="setup")
    services.flags.record_status("B_FLAG", "hold", "error_rate 6% >= warn 5%")
    out = run.ok("list").stdout
    header, first, second = out.splitlines()
    assert header.split() == ["KEY", "STATE", "PERCENT", "STAGE", "AUTO", "STATUS"]
    assert first.split()[:4] == ["A_FLAG", "draft", "0%", "-"]
    assert second.split()[:4] == ["B_FLAG", "rolling", "10%", "1/3"]
    assert "hold: error_rate 6%" in second
    listed = run.json("list")
    assert [f["key"] for f in listed] == ["A_FLAG", "B_FLAG"]
    assert listed[1] == flag_to_dict(services.flags.get("B_FLAG"))
    # --json works globally as well as on the command
    assert run.json("list") == json.loads(run.ok("--json", "list").stdout)


def test_list_warns_about_a_malformed_flag_and_lists_the_rest(
    run: Cli, services: Services, any_redis: Any
) -> None:
    make_flag(services, "GOOD")
    store_malformed(any_redis, "BAD", "{not json")
    result = run.ok("list")
    assert "GOOD" in result.stdout and "BAD" not in result.stdout
    assert result.stderr.startswith("warning: ") and "BAD" in result.stderr


def test_show_human_and_json(run: Cli, services: Services) -> None:
    make_flag(services, description="the thing", stages=STAGES, allow=["qa-1"], gates=GATES)
    out = run.ok("show", "F").stdout
    assert out.startswith("F\n")
    assert "draft at 0%" in out and "the thing" in out and "qa-1" in out
    assert "stages:" in out and "1h" in out and "error_rate" in out
    data = run.json("show", "F")
    assert tuple(data) == FLAG_FIELDS  # exactly the DESIGN §2 names, no readings in draft
    assert data == flag_to_dict(services.flags.get("F"))
    assert data["stages"][0] == {"percent": 10, "bake": 3600, "min_samples": 0}


def test_show_adds_gate_readings_while_serving(run: Cli, services: Services) -> None:
    make_flag(services, stages=STAGES, gates=GATES)
    services.flags.advance("F", actor="setup")
    data = run.json("show", "F")
    assert set(data) == {*FLAG_FIELDS, "readings"}
    assert [g["metric"] for g in data["readings"]["gates"]] == ["error_rate"]
    assert data["readings"]["gates"][0]["verdict"] == "insufficient"
    # The split check beside the gates (DESIGN §4.2): nothing recorded yet.
    assert data["readings"]["srm"] == {
        "verdict": "insufficient",
        "expected": 0.1,
        "observed": {"exposures": None, "samples": None},
        "statistic": {"exposures": 0.0, "samples": 0.0},
    }
    human = run.ok("show", "F").stdout
    assert "readings:" in human and "sample ratio: insufficient" in human


def test_show_refusals(run: Cli) -> None:
    assert "does not exist" in run.fails(1, "show", "NOPE")
    assert "not a valid flag key" in run.fails(2, "show", "9bad")
    assert "Missing argument 'KEY'" in run.fails(2, "show")


def test_check_json_and_reasons(run: Cli, services: Services) -> None:
    make_flag(services, allow=["qa-1"], deny=["bad-1"], stages=STAGES)
    expected = bucket("F", "qa-1")
    assert run.json("check", "F", "qa-1") == {
        "enabled": True,
        "reason": "allowed",
        "bucket": expected,
    }
    assert run.json("check", "F", "bad-1")["reason"] == "denied"
    assert run.json("check", "F", "someone") == {
        "enabled": False,
        "reason": "out_of_cohort",
        "bucket": bucket("F", "someone"),
    }
    services.flags.set_percent("F", 100, actor="setup")
    assert run.json("check", "F", "someone")["reason"] == "in_cohort"
    out = run.ok("check", "F", "someone").stdout
    assert out.startswith("on ") and "reason=in_cohort" in out
    assert f"bucket={bucket('F', 'someone')}" in out
    services.flags.kill("F", reason="r", actor="setup")
    assert run.json("check", "F", "qa-1") == {
        "enabled": False,
        "reason": "killed",
        "bucket": expected,
    }


def test_check_refusals(run: Cli) -> None:
    assert "does not exist" in run.fails(1, "check", "NOPE", "u")
    assert "Missing argument 'USER'" in run.fails(2, "check", "F")


def test_audit_one_entry_per_change_with_the_cli_actor(run: Cli, services: Services) -> None:
    run.ok("create", "F", "--reason", "new feature")
    run.ok("set", "F", "10")
    run.ok("--actor", "alice", "set", "F", "20", "--reason", "ramp")
    run.ok("kill", "F", "--reason", "oops")
    run.ok("kill", "F", "--reason", "oops again")  # idempotent: no second entry
    entries = run.json("audit", "F")
    assert [e["action"] for e in entries] == ["kill", "set", "set", "create"]
    assert [e["actor"] for e in entries] == [ACTOR, "alice", ACTOR, ACTOR]
    assert entries[1]["reason"] == "ramp" and entries[3]["reason"] == "new feature"
    for entry in entries:
        assert {"flag", "actor", "action", "reason", "before", "after", "at"} <= set(entry)
    assert entries[1]["before"]["percent"] == 10 and entries[1]["after"]["percent"] == 20
    assert audit_count(services, "F") == 4
    table = run.ok("audit").stdout.splitlines()
    assert table[0].split()[:5] == ["AT", "FLAG", "ACTOR", "ACTION", "CHANGE"]
    assert "percent 10→20" in table[2] and "alice" in table[2]
    assert len(run.json("audit", "--limit", "1")) == 1


def test_audit_bad_arguments(run: Cli) -> None:
    assert "--limit" in run.fails(2, "audit", "--limit", "0")
    assert "--limit" in run.fails(2, "audit", "--limit", "many")
    assert run.ok("audit").stdout.strip() == "no audit entries"
