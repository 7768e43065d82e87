from __future__ import annotations

import threading
from typing import Any

import pytest

from rollout.core import histogram
from rollout.core.defaults import MAX_SALT
from rollout.core.errors import (
    FlagExists,
    FlagNotFound,
    GateFailing,
    InvalidTransition,
    MalformedFlag,
    PreconditionFailed,
    ValidationError,
)
from rollout.core.model import Flag, State
from rollout.services.container import Services
from rollout.storage.keys import Keys
from rollout.storage.metrics import Batch
from tests.evidence import ERROR_GATE, flush_failing_evidence, record, sdk
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


def test_percent_input_is_never_rounded_or_loosely_parsed(services: Services) -> None:
    services.flags.create("F", actor="t")
    loose = ("12.50000000000000001", "1e-1000030", "0x10", "50%", " 5 0")
    for bad in ("12.555", "101", "-1", "abc", True, None, *loose):
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


@pytest.fixture
def gated(real_services: Services) -> Flag:
    """F at its first stage, with an error-rate gate, in the real redis-server."""
    real_services.flags.create("F", actor="t", gates=[ERROR_GATE], **PLAN)
    return real_services.flags.advance("F", actor="t")


def test_advance_refused_while_a_gate_reads_fail(
    real_services: Services, gated: Flag, real_url: str, clock: FakeClock
) -> None:
    """Real evidence: treatment errors recorded by the SDK, flushed into a real Redis."""
    flush_failing_evidence(real_url, gated, clock)
    assert list(real_services.gates.failing(gated)) == ["error_rate"]
    with pytest.raises(GateFailing, match="gate error_rate reads fail"):
        real_services.flags.advance("F", actor="t")
    assert real_services.flags.get("F") == gated and audit_count(real_services, "F") == 2
    forced = real_services.flags.advance("F", actor="t", force=True)
    assert (forced.stage, forced.percent_bp) == (1, 5000)


def test_advance_goes_ahead_while_the_gates_pass(
    real_services: Services, gated: Flag, real_url: str, clock: FakeClock
) -> None:
    """The same path with healthy evidence: the refusal above comes from the evidence."""
    with sdk(real_url, gated, clock) as client:
        record(client, gated, treatment_ok=60, control_ok=300)
    assert list(real_services.gates.failing(gated)) == []
    assert real_services.flags.advance("F", actor="t").stage == 1


def test_kill_all_kills_rolling_and_paused_only(services: Services) -> None:
    flags = services.flags
    for key in ("A", "B", "C", "D"):
        flags.create(key, actor="t", **PLAN)
    flags.advance("A", actor="t")
    flags.advance("B", actor="t")
    flags.pause("B", actor="t")
    flags.set_percent("C", 100, actor="t")
    flags.advance("C", actor="t")  # past the last stage: complete
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

            # No public move takes an arbitrary change; this one shows the retry keeps each.
            flags._move("F", add, actor=f"thread-{i}", action="update", reason=None)
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


def record_control_latency(services: Services, key: str, bucket: int, samples: int) -> None:
    flag = services.flags.get(key)
    batch = Batch()
    control = batch.tally(key, flag.stage_started_at or 0, "control")
    control.samples, control.latency = samples, {bucket: samples}
    services.gates.metrics.flush(batch, now=services.clock(), process="t")


@pytest.mark.parametrize("move", ["set", "advance"])
def test_opening_100_percent_keeps_the_control_p95_as_baseline(
    services: Services, clock: FakeClock, move: str
) -> None:
    services.flags.create("F", actor="t", stages=[{"percent": 50}, {"percent": 100}])
    services.flags.advance("F", actor="t")
    record_control_latency(services, "F", 40, 200)
    if move == "set":
        moved = services.flags.set_percent("F", 100, actor="t")
    else:
        moved = services.flags.advance("F", actor="t")
    assert (moved.percent_bp, moved.baseline_p95_ms) == (10_000, histogram.bucket_upper_ms(40))
    record_control_latency(services, "F", 60, 200)  # not read again: 100% is already open
    clock.advance(60)
    again = services.flags.set_percent("F", 100, actor="t")  # a write: the bake restarts
    assert (again.version, again.baseline_p95_ms) == (
        moved.version + 1,
        histogram.bucket_upper_ms(40),
    )


def test_an_infinite_control_p95_does_not_block_the_last_stage(services: Services) -> None:
    services.flags.create("F", actor="t", stages=[{"percent": 50}, {"percent": 100}])
    services.flags.advance("F", actor="t")
    record_control_latency(services, "F", histogram.OVERFLOW, 200)  # +inf p95
    moved = services.flags.advance("F", actor="t")
    assert (moved.percent_bp, moved.baseline_p95_ms) == (10_000, None)


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


@pytest.mark.parametrize("text", ["l1\x1b]0;pwned\x07", "bell\x07", "nul\x00"])
def test_control_characters_never_reach_a_terminal(services: Services, text: str) -> None:
    services.flags.create("F", actor="t")
    with pytest.raises(ValidationError, match="control characters"):
        services.flags.update("F", {"description": text}, actor="t")
    with pytest.raises(ValidationError, match="reason"):
        services.flags.kill("F", reason=text, actor="t")
    with pytest.raises(ValidationError, match="actor"):
        services.flags.pause("F", actor=text)
    with pytest.raises(ValidationError, match="reason"):
        services.flags.kill_all(reason=text, actor="t")
    assert len(services.flags.audit("F")) == 1


@pytest.mark.parametrize("actor", ["", "  ", "two\nlines", "tab\there", "x" * 257])
def test_an_actor_is_one_short_line(services: Services, actor: str) -> None:
    services.flags.create("F", actor="t")
    with pytest.raises(ValidationError, match="actor"):
        services.flags.pause("F", actor=actor)
    services.flags.update("F", {"description": "d"}, actor="x" * 256)  # the longest allowed
    assert [e["actor"] for e in services.flags.audit("F")] == ["x" * 256, "t"]


def test_opening_100_percent_keeps_controls_value_means_as_baseline(services: Services) -> None:
    from rollout.core.bounds import Moments

    services.flags.create("F", actor="t", stages=[{"percent": 50}, {"percent": 100}])
    services.flags.advance("F", actor="t")
    batch = Batch()
    epoch = services.flags.get("F").stage_started_at or 0
    batch.tally("F", epoch, "control").values = {
        "improvement_delta": Moments(300, 0.12, 3.0),
        "once": Moments(1, 5.0, 0.0),  # one observation is no mean to judge against
    }
    batch.tally("F", epoch, "treatment").values = {"improvement_delta": Moments(30, 0.5, 1.0)}
    services.gates.metrics.flush(batch, now=services.clock(), process="t")
    moved = services.flags.advance("F", actor="t")
    kept = {"improvement_delta": Moments(300, 0.12, 3.0)}
    assert moved.baseline_values == kept
    assert services.flags.get("F").baseline_values == kept


def test_a_salt_is_at_most_max_salt_characters(services: Services) -> None:
    with pytest.raises(ValidationError, match="salt"):
        services.flags.create("F", actor="t", salt="s" * (MAX_SALT + 1))
    assert services.flags.create("F", actor="t", salt="s" * MAX_SALT).salt == "s" * MAX_SALT
