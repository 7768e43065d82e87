"""rollout apply: diff, idempotence, --dry-run, --prune, validation before any write."""

from __future__ import annotations

import tomllib
from pathlib import Path

from rollout.core.model import State
from rollout.services.container import Services
from tests.cli.conftest import ACTOR, Cli, audit_count, keys, write

REFERENCE = Path(__file__).resolve().parents[2] / "config" / "flags.toml"
KEY = "PROMPT_IMPROVER_ENABLED"

TWO_FLAGS = """
[flags.ONE]
description = "first"
stages = [{ percent = 10 }, { percent = 100 }]

[flags.TWO]
allow = ["qa"]
"""


def test_reference_file_has_the_reference_plan() -> None:
    document = tomllib.loads(REFERENCE.read_text())
    flag = document["flags"][KEY]
    assert [s["percent"] for s in flag["stages"]] == [10, 50, 100]
    assert flag["allow"]  # internal testers first
    gates = {g["metric"]: (g["warn"], g["critical"]) for g in flag["gates"]}
    assert gates == {
        "error_rate": (0.05, 0.10),
        "latency_ratio": (1.2, 1.5),
        "memory_mb": (75, 100),
    }


def test_apply_reference_then_idempotent(run: Cli, services: Services) -> None:
    out = run.ok("apply", str(REFERENCE)).stdout
    assert out.startswith(f"+ create {KEY}\n")
    assert "applied: created 1, updated 0, deleted 0" in out
    flag = services.flags.get(KEY)
    assert flag.state is State.DRAFT and len(flag.stages) == 3 and len(flag.gates) == 3
    entry = services.flags.audit(KEY)[0]
    assert (entry["action"], entry["actor"]) == ("create", ACTOR)
    assert entry["reason"] == f"apply {REFERENCE}"
    count = audit_count(services)
    assert run.ok("apply", str(REFERENCE)).stdout.strip() == "no changes (1 flag(s) up to date)"
    plan = run.json("apply", str(REFERENCE))
    assert plan["changed"] is False and plan["summary"]["unchanged"] == 1
    assert audit_count(services) == count


def test_apply_prints_the_diff_of_an_update(run: Cli, services: Services, tmp_path: Path) -> None:
    path = write(tmp_path / "f.toml", TWO_FLAGS)
    run.ok("apply", path)
    changed = TWO_FLAGS.replace('"first"', '"better"').replace("percent = 10 }", "percent = 20 }")
    out = run.ok("apply", write(tmp_path / "f.toml", changed)).stdout
    assert "~ update ONE (draft)" in out
    assert '    description: "first" → "better"' in out
    assert '      - {"percent": 10, "bake": 0, "min_samples": 0}' in out
    assert '      + {"percent": 20, "bake": 0, "min_samples": 0}' in out
    assert "TWO" not in out  # unchanged flags are only counted
    assert "(1 unchanged)" in out
    plan = run.json("apply", write(tmp_path / "f.toml", TWO_FLAGS))
    (entry,) = [e for e in plan["entries"] if e["action"] == "update"]
    assert entry["changes"]["description"] == {"old": "better", "new": "first"}


def test_dry_run_writes_nothing(run: Cli, services: Services, tmp_path: Path) -> None:
    out = run.ok("apply", "--dry-run", write(tmp_path / "f.toml", TWO_FLAGS)).stdout
    assert "+ create ONE" in out and "+ create TWO" in out
    assert "dry run: would create 2, update 0, delete 0 (0 unchanged); nothing written" in out
    assert keys(services) == [] and audit_count(services) == 0


def test_prune(run: Cli, services: Services, tmp_path: Path) -> None:
    services.flags.create("EXTRA", actor="setup")
    path = write(tmp_path / "f.toml", TWO_FLAGS)
    run.ok("apply", path)
    assert keys(services) == ["EXTRA", "ONE", "TWO"]  # left alone without --prune
    dry = run.ok("apply", "--prune", "--dry-run", path).stdout
    assert "- delete EXTRA (draft)" in dry and keys(services) == ["EXTRA", "ONE", "TWO"]
    run.ok("apply", "--prune", path)
    assert keys(services) == ["ONE", "TWO"]


def test_validation_error_names_flag_and_field_and_writes_nothing(
    run: Cli, services: Services, tmp_path: Path
) -> None:
    bad = TWO_FLAGS + "\n[flags.THREE]\nstages = [{ percent = 50 }, { percent = 12.345 }]\n"
    message = run.fails(2, "apply", write(tmp_path / "f.toml", bad))
    assert "flags.THREE.stages[1].percent" in message and "two decimals" in message
    assert str(tmp_path / "f.toml") in message
    assert keys(services) == [] and audit_count(services) == 0


def test_bad_toml_names_file_and_line(run: Cli, tmp_path: Path) -> None:
    path = write(tmp_path / "f.toml", "[flags.X]\ndescription = \n")
    message = run.fails(2, "apply", path)
    assert path in message and "invalid TOML" in message and "line 2" in message


def test_missing_file_is_a_usage_error(run: Cli, tmp_path: Path) -> None:
    assert "does not exist" in run.fails(2, "apply", str(tmp_path / "nope.toml"))


def test_refuses_to_remove_the_current_stage(run: Cli, services: Services, tmp_path: Path) -> None:
    path = write(tmp_path / "f.toml", TWO_FLAGS)
    run.ok("apply", path)
    services.flags.advance("ONE", actor="setup")  # rolling at 10%
    count = audit_count(services)
    # Removes 10% from ONE and would create NEW: neither may be written.
    edited = TWO_FLAGS.replace("{ percent = 10 }, ", "") + "\n[flags.NEW]\n"
    message = run.fails(1, "apply", write(tmp_path / "f.toml", edited))
    assert "ONE:" in message and "current stage (10%)" in message
    assert audit_count(services) == count and "NEW" not in keys(services)


def test_apply_from_stdin(run: Cli, services: Services) -> None:
    run.ok("apply", "-", input=TWO_FLAGS)
    assert keys(services) == ["ONE", "TWO"]
