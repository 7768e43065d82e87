"""The controller's status events, on every topology: once per stage, durable, ordered
with the audit; a controller kill's event carries its readings."""

from __future__ import annotations

from typing import Any

from rollout.core.events import Event
from rollout.services.container import Services
from rollout.services.events import Position
from rollout.storage.metrics import Batch
from rollout.wiring import build_controller, build_services
from tests.conftest import make_settings
from tests.controller.test_controller import KEY, outcomes, seed
from tests.support import FakeClock


def events(services: Services) -> list[Event]:
    items = services.events.read(KEY, Position(), 1000)
    return [i.event for i in items if i.event is not None]


def test_hold_once_per_stage_per_gate_and_no_bake_events(
    real_services: Services, clock: FakeClock
) -> None:
    seed(real_services, bake="1s")
    controller = build_controller(real_services)
    outcomes(real_services, clock, treatment=(20000, 1400), control=(180000, 9000))
    for _ in range(5):
        clock.advance(1)
        [outcome] = controller.tick(clock())
        assert outcome.decision.action == "hold", outcome.decision.why
    holds = [e for e in events(real_services) if e.type == "hold"]
    assert len(holds) == 1, holds
    hold = holds[0]
    assert hold.flag == KEY and hold.actor == "controller" and "error_rate" in (hold.reason or "")
    assert hold.readings[0]["metric"] == "error_rate" and hold.readings[0]["verdict"] == "warn"
    assert hold.id.endswith(f".{KEY}.status")
    types = [e.type for e in events(real_services)]
    assert types == ["create", "advance", "hold"]


def test_awaiting_approval_once_per_stage(real_services: Services, clock: FakeClock) -> None:
    seed(real_services, auto_advance=False, bake="1s")
    controller = build_controller(real_services)
    outcomes(real_services, clock, treatment=(1000, 1), control=(9000, 9))
    clock.advance(2)
    for _ in range(4):
        [outcome] = controller.tick(clock())
        clock.advance(1)
    assert outcome.decision.action == "await_approval", outcome.decision.why
    assert [e.type for e in events(real_services)].count("awaiting_approval") == 1
    real_services.flags.advance(KEY, actor="op")  # the Go: a new stage
    outcomes(real_services, clock, treatment=(6000, 5), control=(0, 0))
    clock.advance(2)
    controller.tick(clock())
    controller.tick(clock())
    kinds = [e.type for e in events(real_services)]
    assert kinds.count("awaiting_approval") == 2, kinds  # the new stage asks once more


def test_controller_kill_carries_its_readings(real_services: Services, clock: FakeClock) -> None:
    seed(real_services)
    controller = build_controller(real_services)
    outcomes(real_services, clock, treatment=(1000, 400), control=(9000, 45))
    [outcome] = controller.tick(clock())
    assert outcome.decision.action == "kill"
    kill = events(real_services)[-1]
    assert kill.type == "kill" and kill.actor == "controller"
    assert kill.before is not None and kill.before["state"] == "rolling"
    assert kill.after == {"state": "killed", "percent": 0, "stage": None}
    assert kill.readings and kill.readings[0]["metric"] == "error_rate"
    assert kill.readings[0]["verdict"] == "fail"
    assert kill.id.split(".", 1)[1] == KEY


def test_operator_moves_are_events_and_complete_is_derived(
    real_services: Services, clock: FakeClock
) -> None:
    flags = real_services.flags
    flags.create(KEY, actor="op", stages=[{"percent": 50}, {"percent": 100}])
    flags.advance(KEY, actor="op")
    flags.pause(KEY, actor="op")
    flags.resume(KEY, actor="op")
    flags.advance(KEY, actor="op")
    flags.advance(KEY, actor="op")
    flags.kill(KEY, actor="op", reason="bad")
    flags.revive(KEY, actor="op")
    flags.set_percent(KEY, 20, actor="op")
    flags.rollback(KEY, actor="op")
    real_services.triggers.create(KEY, actor="op")  # bookkeeping: no event
    flags.update(KEY, {"description": "x"}, actor="op")
    flags.delete(KEY, actor="op")
    kinds = [e.type for e in events(real_services)]
    assert kinds == [
        "create", "advance", "pause", "resume", "advance", "complete", "kill", "revive", "set",
        "rollback", "update", "delete",
    ]  # fmt: skip


def test_read_resumes_from_a_position_and_never_skips(real_services: Services) -> None:
    flags = real_services.flags
    flags.create(KEY, actor="op")
    for i in range(7):
        flags.update(KEY, {"description": str(i)}, actor="op")
    seen: list[str] = []
    position = Position()
    while True:
        batch = real_services.events.read(KEY, position, 3)
        if not batch:
            break
        seen += [i.event.id for i in batch if i.event is not None]
        position = batch[-1].after
    assert len(seen) == 8 == len(set(seen))
    assert Position.decode(position.encode()) == position


def test_a_restarted_controller_does_not_repeat_a_hold(
    real_services: Services, real_redis: Any, clock: FakeClock
) -> None:
    """The mark lives in Redis: a new process (fresh services) keeps the once-per-stage."""
    seed(real_services, bake="1s")
    outcomes(real_services, clock, treatment=(20000, 1400), control=(180000, 9000))
    for _ in range(2):
        fresh = build_services(make_settings(), redis_client=real_redis, clock=clock)
        clock.advance(1)
        [outcome] = build_controller(fresh).tick(clock())
        assert outcome.decision.action == "hold"
    assert [e.type for e in events(real_services)].count("hold") == 1


def test_sample_ratio_mismatch_once_per_stage(real_services: Services, clock: FakeClock) -> None:
    """Held on a mismatch (``srm = "hold"``), the controller appends the event once per stage,
    as it does ``awaiting_approval``; the next stage may raise it once more."""
    seed(real_services, bake="1s")
    controller = build_controller(real_services)

    def treatment_only(samples: int) -> None:
        # Only the new path is instrumented: every healthy sample lands in the treatment.
        flag = real_services.flags.get(KEY)
        batch = Batch()
        batch.tally(KEY, flag.stage_started_at or 0, "treatment").samples = samples
        real_services.gates.metrics.flush(batch, now=clock(), process="test")

    treatment_only(400)
    for _ in range(5):
        clock.advance(1)
        [outcome] = controller.tick(clock())
        assert outcome.decision.status_word == "sample_ratio_mismatch", outcome.decision.why
    found = [e for e in events(real_services) if e.type == "sample_ratio_mismatch"]
    assert len(found) == 1, found
    event = found[0]
    assert event.actor == "controller" and event.id.endswith(f".{KEY}.status")
    assert "expected 10%" in (event.reason or "")
    assert event.before == event.after and event.after is not None
    assert event.after["percent"] == 10  # held: never advanced
    assert [e.type for e in events(real_services)] == ["create", "advance", "sample_ratio_mismatch"]
    # A new stage (the operator's rollback and advance) asks once more.
    real_services.flags.rollback(KEY, actor="op")
    real_services.flags.advance(KEY, actor="op")
    treatment_only(400)
    for _ in range(3):
        clock.advance(1)
        controller.tick(clock())
    kinds = [e.type for e in events(real_services)]
    assert kinds.count("sample_ratio_mismatch") == 2, kinds
