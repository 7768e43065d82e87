"""Regressions from the adversarial QA pass: each once crashed, hung, rounded or half-wrote."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from rollout import RolloutClient
from rollout.core.errors import InvalidTransition, ValidationError
from rollout.core.model import State
from rollout.services.snapshots import SNAPSHOT_FORMAT
from rollout.storage.metrics import Batch
from rollout.storage.redis_process import RedisProcess
from rollout.wiring import Services
from tests.cli.conftest import Cli


def test_an_unstorable_error_type_does_not_stop_flushing(
    real_services: Services, redis_server_flushed: RedisProcess
) -> None:
    real_services.flags.create("F", actor="t", stages=[{"percent": 100}])
    real_services.flags.advance("F", actor="t")
    with RolloutClient(redis_server_flushed.url, flush_interval=60, environ={}) as client:
        flag = client.flag("F")
        flag.record("u1", ok=False, error_type="bad\ud800name")
        client.flush()
        flag.record("u2", ok=False, error_type="Timeout")
        client.flush()
    stage = real_services.gates.evidence(real_services.flags.get("F")).stage.treatment
    assert stage.samples == 2
    assert stage.errors_by_type == {"bad\\ud800name": 1, "Timeout": 1}


def test_an_infinite_control_p95_does_not_block_the_last_stage(services: Services) -> None:
    services.flags.create("F", actor="t", stages=[{"percent": 50}, {"percent": 100}])
    flag = services.flags.advance("F", actor="t")
    batch = Batch()
    control = batch.tally("F", flag.stage_started_at or 0, "control")
    control.samples, control.latency = 200, {182: 200}  # beyond the histogram: +inf p95
    services.gates.metrics.flush(batch, now=services.clock(), process="t")
    moved = services.flags.advance("F", actor="t")
    assert (moved.percent_bp, moved.baseline_p95_ms) == (10_000, None)


@pytest.mark.parametrize("window", ["3650d", "2h", "500ms"])
def test_gate_windows_are_bounded(services: Services, window: str) -> None:
    gates = [{"metric": "error_rate", "warn": 0.05, "critical": 0.1, "window": window}]
    with pytest.raises(ValidationError, match="window"):
        services.flags.create("F", actor="t", gates=gates)


@pytest.mark.parametrize("percent", ["12.50000000000000001", "1e-1000030", "0x10", "50%", " 5 0"])
def test_percents_are_never_rounded_or_loosely_parsed(services: Services, percent: str) -> None:
    services.flags.create("F", actor="t")
    with pytest.raises(ValidationError):
        services.flags.set_percent("F", percent, actor="t")


def test_toml_and_json_files_keep_decimals_exact(run: Cli, tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text("[flags.F]\nstages = [{ percent = 12.50000000000000001 }]\n")
    assert "more than two decimals" in run.fails(2, "apply", str(plan))
    snap = tmp_path / "s.json"
    snap.write_text(
        '{"format": "%s", "schema": 1, "flags": [{"key": "F", "stages": '
        '[{"percent": 12.50000000000000001}]}]}'.replace("%s", SNAPSHOT_FORMAT)
    )
    assert "more than two decimals" in run.fails(2, "restore", str(snap))


@pytest.fixture
def run(services: Services) -> Cli:
    return Cli(services)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("[" * 100_000, "nested too deeply"),
        (
            '{"format": "FMT", "schema": 1, "flags": [{"key": "F", "version": BIG}]}'.replace(
                "FMT", SNAPSHOT_FORMAT
            ).replace("BIG", "9" * 5000),
            "invalid JSON",
        ),
    ],
    ids=["deep", "huge-int"],
)
def test_hostile_json_files_are_usage_errors(
    run: Cli, tmp_path: Path, content: str, words: str
) -> None:
    path = tmp_path / "s.json"
    path.write_text(content)
    assert words in run.fails(2, "restore", str(path))


def test_snapshot_refuses_to_replace_a_link(run: Cli, tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("keep")
    link = tmp_path / "link.json"
    os.symlink(real, link)
    assert "not a regular file" in run.fails(2, "snapshot", "--out", str(link))
    assert link.is_symlink() and real.read_text() == "keep"


@pytest.mark.parametrize(
    "flag",
    [
        {
            "key": "F",
            "state": "killed",
            "kill": {
                "reason": "r",
                "by": "b",
                "state_before": "killed",
                "stage_before": None,
                "percent_before": 0,
            },
        },
        {"key": "F", "state": "draft", "percent": 50},
    ],
    ids=["killed-from-killed", "draft-at-50"],
)
def test_restore_refuses_flags_that_break_the_rules(
    services: Services, flag: dict[str, Any]
) -> None:
    document = {"format": SNAPSHOT_FORMAT, "schema": 1, "flags": [flag]}
    with pytest.raises(ValidationError):
        services.snapshots.restore(document, actor="t")
    assert services.flags.list_flags() == []


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
def test_a_damaged_bootstrap_file_never_stops_the_application(tmp_path: Path, content: str) -> None:
    boot = tmp_path / "boot.json"
    boot.write_text(content)
    with RolloutClient(
        "redis://127.0.0.1:9/0", bootstrap_file=boot, socket_timeout=0.2, environ={}
    ) as client:
        assert client.is_enabled("F", "u") is False


def test_adding_stages_gives_a_hand_set_flag_its_stage(services: Services) -> None:
    services.flags.create("F", actor="t")
    services.flags.set_percent("F", 50, actor="t")
    moved = services.flags.update("F", {"stages": [{"percent": 50}, {"percent": 100}]}, actor="t")
    assert moved.stage == 0


def test_a_flag_killed_at_a_hand_set_percent_accepts_a_new_plan(services: Services) -> None:
    services.flags.create("F", actor="t", stages=[{"percent": 10}, {"percent": 50}])
    services.flags.set_percent("F", 30, actor="t")
    services.flags.kill("F", reason="r", actor="t")
    services.flags.update(
        "F", {"stages": [{"percent": 10}, {"percent": 50}, {"percent": 100}]}, actor="t"
    )
    revived = services.flags.revive("F", actor="t")
    assert (revived.state, revived.percent_bp, revived.stage) == (State.ROLLING, 3000, 0)
    services.flags.advance("F", actor="t")  # to the planned 50% stage
    services.flags.kill("F", reason="r", actor="t")
    with pytest.raises(InvalidTransition):  # killed on a planned stage: that stage must stay
        services.flags.update("F", {"stages": [{"percent": 10}]}, actor="t")


def test_sdk_defaults_are_bools_and_hostile_ids_never_raise() -> None:
    class Hostile(str):
        def isascii(self) -> bool:
            raise ValueError("no")

    class Unhashable:
        def __hash__(self) -> int:
            raise ValueError("no")

    client = RolloutClient("redis://127.0.0.1:9/0", start=False, environ={})
    assert client.flag("UNKNOWN", None).is_enabled("u") is False  # type: ignore[arg-type]
    assert client.is_enabled("UNKNOWN", "u", default="yes") is True  # type: ignore[arg-type]
    assert client.flag("UNKNOWN", default=[]).is_enabled("u") is False  # type: ignore[arg-type]
    from rollout.core.model import Flag

    client.table.replace_all(
        {
            "F": Flag(
                key="F", salt="F", state=State.ROLLING, percent_bp=5000, allow=("a",), version=1
            )
        }
    )
    for user in (Hostile("x"), Unhashable()):
        assert client.flag("F").is_enabled(user) in (True, False)
        with client.flag("F").track(user) as enabled:
            assert enabled in (True, False)


@pytest.mark.parametrize("text", ["l1\x1b]0;pwned\x07", "bell\x07", "nul\x00"])
def test_control_characters_never_reach_a_terminal(services: Services, text: str) -> None:
    services.flags.create("F", actor="t")
    with pytest.raises(ValidationError, match="control characters"):
        services.flags.update("F", {"description": text}, actor="t")
    with pytest.raises(ValidationError):
        services.flags.kill("F", reason=text, actor="t")
    with pytest.raises(ValidationError):
        services.flags.pause("F", actor=text)
    assert len(services.flags.audit("F")) == 1
