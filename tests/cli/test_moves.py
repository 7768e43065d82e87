"""create, set, advance, rollback, pause, resume, kill, revive, delete: exit codes and effects."""

from __future__ import annotations

import pytest

from rollout.core.model import State
from rollout.services.container import Services
from rollout.storage.redis_process import RedisProcess
from tests.cli.conftest import ACTOR, Cli, audit_count
from tests.evidence import ERROR_GATE, flush_failing_evidence
from tests.support import FakeClock

STAGES = [{"percent": 10}, {"percent": 50}, {"percent": 100}]


def staged(services: Services, key: str = "F") -> None:
    services.flags.create(key, actor="setup", stages=STAGES)


def test_create(run: Cli, services: Services) -> None:
    assert run.ok("create", "F", "--description", "new thing").stdout.startswith("created F")
    flag = services.flags.get("F")
    assert (flag.state, flag.percent_bp, flag.description) == (State.DRAFT, 0, "new thing")
    assert services.flags.audit("F")[0]["actor"] == ACTOR
    assert "already exists" in run.fails(1, "create", "F")
    assert "not a valid flag key" in run.fails(2, "create", "bad key")
    assert run.json("create", "G")["state"] == "draft"


def test_set_percent(run: Cli, services: Services) -> None:
    staged(services)
    assert run.ok("set", "F", "12.5").stdout.strip() == "F: rolling at 12.5%, stage 1/3"
    assert services.flags.get("F").percent_bp == 1250
    assert run.json("set", "F", "50")["stage"] == 1


@pytest.mark.parametrize(
    ("percent", "message"),
    [
        ("12.345", "more than two decimals"),
        ("100.01", "out of range"),
        ("abc", "not a number"),
        ("nan", "not a number"),
        ("1e2", "not a number"),
        ("1_0", "not a number"),
        ("１０", "not a number"),
        ("-1", "No such option"),  # Click reads it as an option: still a usage error
    ],
)
def test_set_refuses_bad_percents_without_writing(
    run: Cli, services: Services, percent: str, message: str
) -> None:
    staged(services)
    before = audit_count(services)
    assert message in run.fails(2, "set", "F", percent)
    assert audit_count(services) == before and services.flags.get("F").percent_bp == 0


def test_set_refusals(run: Cli, services: Services) -> None:
    assert "does not exist" in run.fails(1, "set", "NOPE", "10")
    staged(services)
    services.flags.kill("F", reason="r", actor="setup")
    assert "killed" in run.fails(1, "set", "F", "10")


def test_advance_rollback_pause_resume(run: Cli, services: Services) -> None:
    staged(services)
    assert run.ok("advance", "F").stdout.strip() == "F: rolling at 10%, stage 1/3"
    run.ok("advance", "F", "--reason", "looks good")
    assert services.flags.get("F").percent_bp == 5000
    assert services.flags.audit("F")[0]["reason"] == "looks good"
    assert run.ok("pause", "F").stdout.strip() == "F: paused at 50%, stage 2/3"
    assert run.json("pause", "F")["state"] == "paused"  # idempotent, nothing written
    assert run.ok("rollback", "F").stdout.strip() == "F: paused at 10%, stage 1/3"
    assert run.ok("resume", "F").stdout.strip() == "F: rolling at 10%, stage 1/3"
    assert run.ok("rollback", "F").stdout.strip() == "F: draft (0%)"
    assert [e["action"] for e in services.flags.audit("F")] == [
        "rollback",
        "resume",
        "rollback",
        "pause",
        "advance",
        "advance",
        "create",
    ]


def test_move_refusals(run: Cli, services: Services) -> None:
    services.flags.create("PLAIN", actor="setup")
    assert "no stages" in run.fails(1, "advance", "PLAIN")
    assert "draft already" in run.fails(1, "rollback", "PLAIN")
    assert "only a rolling flag" in run.fails(1, "pause", "PLAIN")
    assert "not paused" in run.fails(1, "resume", "PLAIN")
    assert "not killed" in run.fails(1, "revive", "PLAIN")
    for command in ("advance", "rollback", "pause", "resume", "revive"):
        assert "does not exist" in run.fails(1, command, "NOPE")
        assert "Missing argument" in run.fails(2, command)


def test_advance_refused_while_a_gate_fails_unless_forced(
    real_services: Services, redis_server_flushed: RedisProcess, clock: FakeClock
) -> None:
    """Real evidence from the SDK in a real Redis, read by the real gate service."""
    run = Cli(real_services)
    services = real_services
    services.flags.create("F", actor="setup", stages=STAGES, gates=[ERROR_GATE])
    rolling = services.flags.advance("F", actor="setup")
    flush_failing_evidence(redis_server_flushed.url, rolling, clock)
    error = run.fails(1, "advance", "F")
    assert "gate error_rate reads fail" in error and "force" in error
    assert services.flags.get("F") == rolling
    assert run.json("advance", "F", "--force", "--reason", "known noise")["percent"] == 50


def test_kill_and_revive(run: Cli, services: Services) -> None:
    staged(services)
    services.flags.advance("F", actor="setup")
    out = run.ok("kill", "F", "--reason", "errors up").stdout.strip()
    assert out == f"F: killed (was rolling at 10%) by {ACTOR}: errors up"
    version = services.flags.get("F").version
    assert run.json("kill", "F", "--reason", "again")["kill"]["reason"] == "errors up"
    assert services.flags.get("F").version == version  # idempotent: nothing written
    assert run.ok("revive", "F").stdout.strip() == "F: rolling at 10%, stage 1/3"


def test_kill_usage_errors(run: Cli, services: Services) -> None:
    staged(services)
    assert "--reason" in run.fails(2, "kill", "F")
    assert "needs a reason" in run.fails(2, "kill", "F", "--reason", "  ")
    assert "either KEY or --all" in run.fails(2, "kill", "--reason", "r")
    assert "either KEY or --all" in run.fails(2, "kill", "F", "--all", "--reason", "r", "--yes")
    assert services.flags.get("F").state is State.DRAFT


def test_kill_all(run: Cli, services: Services) -> None:
    for key in ("ROLLING", "PAUSED", "DRAFT"):
        staged(services, key)
    services.flags.advance("ROLLING", actor="setup")
    services.flags.advance("PAUSED", actor="setup")
    services.flags.pause("PAUSED", actor="setup")
    assert "--yes" in run.fails(2, "kill", "--all", "--reason", "bad day")
    assert services.flags.get("ROLLING").state is State.ROLLING  # nothing killed
    out = run.ok("kill", "--all", "--reason", "bad day", "--yes").stdout
    assert out.strip() == "killed 2 flag(s): PAUSED, ROLLING"
    assert {f.key for f in services.flags.list_flags() if f.state is State.KILLED} == {
        "PAUSED",
        "ROLLING",
    }
    assert services.flags.get("DRAFT").state is State.DRAFT
    assert run.json("kill", "--all", "--reason", "again", "--yes") == []
    assert run.ok("kill", "--all", "--reason", "x", "--yes").stdout.strip() == (
        "no rolling or paused flag"
    )


def test_delete(run: Cli, services: Services) -> None:
    staged(services)
    assert "--yes" in run.fails(2, "delete", "F")
    assert services.flags.get("F").key == "F"
    assert run.ok("delete", "F", "--yes", "--reason", "done").stdout.strip() == "deleted F"
    assert services.flags.list_flags() == []
    assert services.flags.audit("F")[0]["action"] == "delete"
    assert services.flags.audit("F")[0]["reason"] == "done"
    assert "does not exist" in run.fails(1, "delete", "F", "--yes")
