from __future__ import annotations

import threading
from typing import Any

import pytest

from rollout.core.errors import (
    FlagExists,
    FlagNotFound,
    GateFailing,
    InvalidTransition,
    MalformedFlag,
    PreconditionFailed,
    ValidationError,
)
from rollout.core.model import State
from rollout.storage.keys import Keys
from rollout.wiring import Services
from tests.support import FakeClock

PLAN = {"stages": [{"percent": 10, "bake": "1h"}, {"percent": 50}, {"percent": 100}]}


def audit_count(services: Services, key: str) -> int:
    return len(services.flags.audit(key, limit=1000))


def test_create_validates_before_writing(services: Services) -> None:
    with pytest.raises(ValidationError, match=r"stages\[1\].percent"):
        services.flags.create("F", actor="t", stages=[{"percent": 10}, {"percent": 5}])
    with pytest.raises(ValidationError, match="key"):
        services.flags.create("9bad", actor="t")
    with pytest.raises(FlagNotFound):
        services.flags.get("F")
    assert services.flags.audit(limit=100) == []


def test_moves_are_audited_once_each_with_actor_and_reason(services: Services) -> None:
    flags = services.flags
    flags.create("F", actor="alice", reason="new", **PLAN)
    flags.advance("F", actor="alice")
    flags.set_percent("F", "12.5", actor="bob", reason="manual")
    flags.pause("F", actor="bob")
    flags.pause("F", actor="bob")  # no change, no entry
    flags.kill("F", reason="errors", actor="carol")
    flags.kill("F", reason="again", actor="carol")  # idempotent, no entry
    flags.revive("F", actor="carol")
    entries = flags.audit("F")
    assert [e["action"] for e in entries] == ["revive", "kill", "pause", "set", "advance", "create"]
    assert entries[2]["actor"] == "bob" and entries[3]["reason"] == "manual"
    flag = flags.get("F")
    assert (flag.state, flag.percent_bp, flag.stage) == (State.PAUSED, 1250, 0)


def test_percent_input_is_never_rounded(services: Services) -> None:
    services.flags.create("F", actor="t")
    for bad in ("12.555", "101", "-1", "abc", True, None):
        with pytest.raises(ValidationError):
            services.flags.set_percent("F", bad, actor="t")
    assert audit_count(services, "F") == 1


def test_update_changes_config_only_and_honours_if_match(services: Services) -> None:
    flags = services.flags
    created = flags.create("F", actor="t")
    with pytest.raises(ValidationError, match="state"):
        flags.update("F", {"state": "rolling"}, actor="t")
    with pytest.raises(PreconditionFailed):
        flags.update("F", {"description": "x"}, actor="t", if_match=created.version + 5)
    updated = flags.update("F", {"description": "x"}, actor="t", if_match=created.version)
    assert updated.description == "x" and updated.version == created.version + 1


def test_update_refuses_to_remove_the_current_stage(services: Services) -> None:
    flags = services.flags
    flags.create("F", actor="t", **PLAN)
    flags.advance("F", actor="t")
    with pytest.raises(InvalidTransition, match="current stage"):
        flags.update("F", {"stages": [{"percent": 50}, {"percent": 100}]}, actor="t")
    moved = flags.update("F", {"stages": [{"percent": 5}, {"percent": 10}]}, actor="t")
    assert moved.stage == 1


def test_update_of_a_killed_flag_keeps_the_stage_it_revives_to(services: Services) -> None:
    flags = services.flags
    flags.create("F", actor="t", **PLAN)
    flags.advance("F", actor="t")
    flags.advance("F", actor="t")  # 50%, stage 1
    flags.kill("F", reason="r", actor="t")
    with pytest.raises(InvalidTransition, match="revives to"):
        flags.update("F", {"stages": [{"percent": 10}]}, actor="t")
    flags.update("F", {"stages": [{"percent": 50}]}, actor="t")
    revived = flags.revive("F", actor="t")
    assert (revived.stage, revived.percent_bp) == (0, 5000)


def test_create_existing_and_missing_flags(services: Services) -> None:
    services.flags.create("F", actor="t")
    with pytest.raises(FlagExists):
        services.flags.create("F", actor="t")
    with pytest.raises(FlagNotFound):
        services.flags.advance("G", actor="t")
    with pytest.raises(InvalidTransition):
        services.flags.advance("F", actor="t")  # no stages


def test_advance_refused_when_a_gate_fails(services: Services) -> None:
    services.flags.gates.failing = lambda flag: ["error_rate"]  # type: ignore[method-assign]
    services.flags.create("F", actor="t", **PLAN)
    with pytest.raises(GateFailing):
        services.flags.advance("F", actor="t")
    assert services.flags.advance("F", actor="t", force=True).stage == 0


def test_kill_all_kills_rolling_and_paused_only(services: Services) -> None:
    flags = services.flags
    for key in ("A", "B", "C", "D"):
        flags.create(key, actor="t", **PLAN)
    flags.advance("A", actor="t")
    flags.advance("B", actor="t")
    flags.pause("B", actor="t")
    flags.set_percent("C", 100, actor="t")
    flags.complete("C", actor="t")
    killed = flags.kill_all(reason="bad day", actor="ops")
    assert sorted(f.key for f in killed) == ["A", "B"]
    assert flags.get("C").state is State.COMPLETE and flags.get("D").state is State.DRAFT


def test_malformed_flag_is_a_clear_error_and_can_be_deleted(
    services: Services, any_redis: Any
) -> None:
    services.flags.create("F", actor="t")
    any_redis.hset(Keys().flag("F"), "d", "not json")
    with pytest.raises(MalformedFlag, match="'F'"):
        services.flags.get("F")
    services.flags.delete("F", actor="t")
    with pytest.raises(FlagNotFound):
        services.flags.get("F")


def test_stage_started_at_uses_the_injected_clock(services: Services, clock: FakeClock) -> None:
    services.flags.create("F", actor="t", **PLAN)
    clock.advance(60)
    flag = services.flags.advance("F", actor="t")
    assert flag.stage_started_at == round(clock.now * 1000)


def test_twenty_threads_conflicting_lose_no_update(real_services: Services) -> None:
    """Each thread appends its name to allow; every successful write must survive."""
    flags = real_services.flags
    flags.create("F", actor="t")
    done: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(20)

    def worker(i: int) -> None:
        start.wait()
        for j in range(5):
            user = f"u{i}-{j}"

            def add(flag: Any, now: int, user: str = user) -> Any:
                return flag.with_changes(allow=(*flag.allow, user))

            flags._mutate("F", add, actor=f"thread-{i}", action="update", reason=None)
            with lock:
                done.append(user)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = flags.get("F")
    assert sorted(final.allow) == sorted(done) and len(done) == 100
    entries = flags.audit("F", limit=1000)
    assert len(entries) == 101  # create + one per successful write
    assert final.version == 101
    newest = entries[0]
    assert newest["version"] == final.version and newest["after"]["allow"] == list(final.allow)
