"""ApplyService: declarative plans, validation of the whole file, no moves, no half-writes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rollout.core.errors import InvalidTransition, ValidationError
from rollout.core.model import State
from rollout.services.apply import DEFAULTS, parse_document
from rollout.services.container import Services
from tests.support import store_malformed

STAGES = [{"percent": 10, "bake": "1h"}, {"percent": 50}, {"percent": 100}]
GATES = [{"metric": "error_rate", "warn": 0.05, "critical": 0.1}]


def doc(**flags: dict[str, Any]) -> dict[str, Any]:
    return {"flags": flags}


def audit_count(services: Services) -> int:
    return len(services.flags.audit(None, 10_000))


def keys(services: Services) -> list[str]:
    return [f.key for f in services.flags.list_flags()]


def test_create_then_idempotent(services: Services) -> None:
    document = doc(F={"description": "x", "stages": STAGES, "gates": GATES, "allow": ["qa"]})
    plan = services.apply.plan(document)
    (entry,) = plan.entries
    assert entry.action == "create" and plan.changed and not plan.applied
    assert {c.field for c in entry.changes} == {"description", "stages", "gates", "allow"}
    assert keys(services) == []  # plan reads only
    applied = services.apply.apply(document, actor="ops", reason="initial")
    assert applied.applied and applied.summary()["create"] == 1
    flag = services.flags.get("F")
    assert (flag.state, flag.percent_bp, flag.stage) == (State.DRAFT, 0, None)
    assert [s.percent_bp for s in flag.stages] == [1000, 5000, 10000]
    (entry_,) = services.flags.audit("F")
    assert (entry_["actor"], entry_["action"], entry_["reason"]) == ("ops", "create", "initial")
    count = audit_count(services)
    again = services.apply.apply(document, actor="ops")
    assert not again.changed and again.summary()["unchanged"] == 1
    assert audit_count(services) == count
    json.dumps(again.to_dict())  # the plan is JSON as it stands


def test_update_diff_is_in_the_external_form(services: Services) -> None:
    services.apply.apply(doc(F={"stages": STAGES, "description": "old"}), actor="ops")
    new = [{"percent": 12.5, "bake": "1h"}, {"percent": 50}, {"percent": 100}]
    plan = services.apply.plan(doc(F={"stages": new, "description": "new"}))
    (entry,) = plan.entries
    assert entry.action == "update" and entry.state == "draft"
    changes = {c.field: (c.old, c.new) for c in entry.changes}
    assert changes["description"] == ("old", "new")
    old_stages, new_stages = changes["stages"]
    assert old_stages[0] == {"percent": 10, "bake": 3600, "min_samples": 0}
    assert new_stages[0] == {"percent": 12.5, "bake": 3600, "min_samples": 0}


def test_absent_fields_mean_their_defaults(services: Services) -> None:
    full = {"description": "d", "auto_advance": True, "allow": ["a"], "deny": ["b"], "srm": "warn"}
    rules = [{"attribute": "plan", "op": "in", "values": ["team"], "serve": "on"}]
    services.apply.apply(
        doc(F={**full, "stages": STAGES, "gates": GATES, "rules": rules}), actor="ops"
    )
    plan = services.apply.apply(doc(F={}), actor="ops")
    assert {c.field for c in plan.entries[0].changes} == set(DEFAULTS)
    flag = services.flags.get("F")
    assert (flag.description, flag.auto_advance, flag.stages, flag.gates) == ("", False, (), ())
    assert (flag.allow, flag.deny, flag.rules) == ((), (), ())


def test_dry_run_writes_nothing(services: Services) -> None:
    plan = services.apply.apply(doc(F={}, G={"allow": ["x"]}), actor="ops", dry_run=True)
    assert plan.summary()["create"] == 2 and not plan.applied
    assert keys(services) == [] and audit_count(services) == 0


def test_prune_only_when_asked(services: Services) -> None:
    services.flags.create("EXTRA", actor="setup")
    plan = services.apply.apply(doc(F={}), actor="ops")
    assert plan.keys("delete") == [] and keys(services) == ["EXTRA", "F"]
    plan = services.apply.apply(doc(F={}), actor="ops", prune=True)
    assert plan.keys("delete") == ["EXTRA"] and keys(services) == ["F"]
    assert services.flags.audit("EXTRA")[0]["actor"] == "ops"


def test_prune_removes_a_malformed_stored_flag(services: Services, any_redis: Any) -> None:
    store_malformed(any_redis, "BAD", "{")
    plan = services.apply.apply(doc(), actor="ops", prune=True)
    assert plan.keys("delete") == ["BAD"] and plan.entries[0].state is None
    assert services.flags.keys() == []


def test_never_changes_state_percent_or_stage(services: Services) -> None:
    services.apply.apply(doc(F={"stages": STAGES}), actor="ops")
    services.flags.advance("F", actor="ops")
    services.flags.advance("F", actor="ops")  # rolling at 50%, stage 1
    inserted = [STAGES[0], {"percent": 25}, *STAGES[1:]]
    services.apply.apply(doc(F={"stages": inserted, "description": "more"}), actor="ops")
    flag = services.flags.get("F")
    assert (flag.state, flag.percent_bp) == (State.ROLLING, 5000)
    assert flag.stage == 2  # still the 50% stage, now at its new index
    assert flag.description == "more"


@pytest.mark.parametrize("state", ["rolling", "paused"])
def test_refuses_to_remove_the_current_stage(services: Services, state: str) -> None:
    services.apply.apply(doc(F={"stages": STAGES}), actor="ops")
    services.flags.advance("F", actor="ops")
    if state == "paused":
        services.flags.pause("F", actor="ops")
    count = audit_count(services)
    document = doc(A_NEW={}, F={"stages": STAGES[1:]})  # A_NEW sorts first: must not be written
    with pytest.raises(InvalidTransition) as caught:
        services.apply.apply(document, actor="ops")
    assert str(caught.value).startswith("F: ")
    assert f"remove the current stage (10%) of a {state} flag" in str(caught.value)
    assert audit_count(services) == count and keys(services) == ["F"]


def test_refuses_to_remove_the_stage_a_killed_flag_revives_to(services: Services) -> None:
    services.apply.apply(doc(F={"stages": STAGES}), actor="ops")
    services.flags.advance("F", actor="ops")
    services.flags.advance("F", actor="ops")
    services.flags.kill("F", reason="r", actor="ops")  # killed at stage 1 (50%)
    with pytest.raises(InvalidTransition, match=r"F: .* stage \(50%\) the killed flag revives to"):
        services.apply.apply(doc(F={"stages": [{"percent": 10}, {"percent": 100}]}), actor="o")
    # A plan that keeps 50% anywhere is fine, and revive lands on that stage at its new index.
    services.apply.apply(doc(F={"stages": [{"percent": 50}, {"percent": 100}]}), actor="ops")
    flag = services.flags.revive("F", actor="ops")
    assert (flag.state, flag.stage, flag.percent_bp) == (State.ROLLING, 0, 5000)


def test_validation_names_flag_and_field_and_checks_every_flag(services: Services) -> None:
    with pytest.raises(ValidationError) as caught:
        services.apply.plan(doc(F={"stages": [{"percent": 50}, {"percent": 12.345}]}))
    assert caught.value.field == "flags.F.stages[1].percent"
    assert str(caught.value).startswith("flags.F.stages[1].percent: ")
    with pytest.raises(ValidationError) as caught:
        services.apply.apply(
            doc(A={"stagse": []}, B={"gates": [{"metric": "cpu"}]}, C={}), actor="ops"
        )
    message = str(caught.value)
    assert message.startswith("2 errors: ")
    assert "flags.A: unknown field 'stagse'" in message
    assert "flags.B.gates[0].metric" in message
    assert keys(services) == [] and audit_count(services) == 0


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ([], "table of flags"),
        ({"flag": {}}, "unknown table 'flag'"),
        ({}, "flags: is required"),
        ({"flags": []}, "flags: must be a table"),
        ({"flags": {"9bad": {}}}, "flags.9bad: '9bad' is not a valid flag key"),
        ({"flags": {"F": "x"}}, "flags.F: must be a table"),
        ({"flags": {"F": {"state": "rolling"}}}, "flags.F: unknown field 'state'"),
        ({"flags": {"F": {"salt": "s"}}}, "flags.F: unknown field 'salt'"),
    ],
)
def test_document_shape(document: Any, where: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_document(document)
    assert where in str(caught.value)


def test_a_flag_set_between_stages_rederives_its_stage(services: Services) -> None:
    services.apply.apply(doc(F={"stages": STAGES}), actor="ops")
    services.flags.set_percent("F", 30, actor="ops")  # rolling at 30%, between stages
    services.apply.apply(
        doc(F={"stages": [{"percent": 20}, {"percent": 25}, {"percent": 100}]}), actor="ops"
    )
    flag = services.flags.get("F")
    assert (flag.state, flag.percent_bp, flag.stage) == (State.ROLLING, 3000, 1)


def test_apply_takes_value_gates_and_refuses_the_wrong_order_naming_the_gate(
    services: Services,
) -> None:
    gate = {"metric": "value:improvement_delta", "direction": "higher_is_better",
            "warn": -0.02, "critical": -0.05, "min_samples": 200, "relative": False}  # fmt: skip
    services.apply.apply(doc(F={"gates": [gate]}), actor="ops")
    (stored,) = services.flags.get("F").gates
    assert (stored.metric, stored.relative, stored.critical) == (
        "value:improvement_delta",
        False,
        -0.05,
    )
    with pytest.raises(ValidationError) as caught:
        services.apply.plan(doc(F={"gates": [{**gate, "warn": -0.05, "critical": -0.02}]}))
    assert caught.value.field == "flags.F.gates[0].critical"
    assert "value:improvement_delta: with higher_is_better" in str(caught.value)
    many = [{**gate, "metric": f"value:v{i}"} for i in range(21)]
    with pytest.raises(ValidationError, match="at most 20 value: gates"):
        services.apply.plan(doc(F={"gates": many}))
