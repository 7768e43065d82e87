"""The controller loop: decisions through services, one leader at a time, clean shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from rollout.core.model import State
from rollout.core.units import render_instant, to_ms
from rollout.services.container import Services
from rollout.storage.metrics import Batch
from rollout.storage.redis_process import RedisProcess
from rollout.wiring import build_controller, build_services
from tests.conftest import make_settings
from tests.support import FakeClock, wait_until

KEY = "F"
GATES = [{"metric": "error_rate", "warn": 0.05, "critical": 0.10, "min_samples": 100}]


def seed(services: Services, *, auto_advance: bool = True, bake: str = "1h") -> None:
    services.flags.create(
        KEY,
        actor="t",
        auto_advance=auto_advance,
        gates=GATES,
        stages=[{"percent": 10, "bake": bake, "min_samples": 200}, {"percent": 100}],
    )
    services.flags.advance(KEY, actor="t")


def outcomes(
    services: Services,
    clock: FakeClock,
    *,
    treatment: tuple[int, int],
    control: tuple[int, int],
    at: float | None = None,
) -> None:
    """Record (samples, errors) per arm for the flag's current stage, as an SDK flush would
    (at ``clock()``, or at ``at``)."""
    flag = services.flags.get(KEY)
    batch = Batch()
    for arm, (samples, errors) in (("treatment", treatment), ("control", control)):
        tally = batch.tally(KEY, flag.stage_started_at or 0, arm)
        tally.samples, tally.errors = samples, errors
        if errors:
            tally.errors_by_type["Boom"] = errors
    services.gates.metrics.flush(batch, now=clock() if at is None else at, process="test")


def test_tick_holds_during_bake_then_advances(services: Services, clock: FakeClock) -> None:
    seed(services)
    controller = build_controller(services)
    outcomes(services, clock, treatment=(1000, 5), control=(9000, 45))
    [outcome] = controller.tick(clock())
    assert outcome.decision.action == "hold" and "baking" in outcome.decision.why
    assert services.flags.get(KEY).status.decision == "hold"  # type: ignore[union-attr]
    clock.advance(3601)
    [outcome] = controller.tick(clock())
    assert outcome.decision.action == "advance"
    flag = services.flags.get(KEY)
    assert (flag.stage, flag.percent_bp) == (1, 10_000)
    entry = services.flags.audit(KEY, limit=1)[0]
    assert (entry["actor"], entry["action"]) == ("controller", "advance")


def test_one_tick_reads_decides_and_writes_at_the_same_now(
    services: Services, clock: FakeClock
) -> None:
    """The tick's ``now`` rules, however far the services' own clocks lag: the sliding window
    ends there, the bake is judged there, and the move and the status are stamped there."""
    seed(services)
    now = clock() + 3601  # the bake is over by now; the services' clock still says it is not
    outcomes(services, clock, treatment=(1000, 5), control=(9000, 45), at=now)
    [outcome] = build_controller(services).tick(now)
    assert outcome.decision.action == "advance", outcome.decision.why
    flag = services.flags.get(KEY)
    at = to_ms(now)
    assert (flag.stage, flag.stage_started_at, flag.updated_at) == (1, at, at)
    assert flag.status is not None and (flag.status.decision, flag.status.at) == ("advanced", at)
    entry = services.flags.audit(KEY, limit=1)[0]
    assert (entry["action"], entry["at"]) == ("advance", render_instant(at))


def test_the_sliding_window_ends_at_the_ticks_now(services: Services, clock: FakeClock) -> None:
    """A burst of errors that only the window at ``now`` holds kills; read at the services'
    clock, the window would show the quiet hour before and the flag would advance."""
    seed(services)
    outcomes(services, clock, treatment=(20_000, 100), control=(180_000, 900))
    now = clock() + 3601
    # 30% in the last window: an hour into the stage the restart scan spends 15.7 nats on a
    # restart there (sequential alpha spending), which 20% of 300 (~12 nats) would not reach.
    outcomes(services, clock, treatment=(300, 90), control=(2700, 27), at=now)
    [outcome] = build_controller(services).tick(now)
    assert outcome.decision.action == "kill", outcome.decision.why
    flag = services.flags.get(KEY)
    assert flag.kill is not None and "window" in flag.kill.reason
    assert (flag.kill.at, flag.updated_at) == (to_ms(now), to_ms(now))


def test_tick_kills_on_fail_with_the_readings_as_reason(
    services: Services, clock: FakeClock
) -> None:
    seed(services)
    outcomes(services, clock, treatment=(400, 80), control=(3600, 36))
    [outcome] = build_controller(services).tick(clock())
    assert outcome.decision.action == "kill"
    flag = services.flags.get(KEY)
    assert flag.state is State.KILLED and flag.kill is not None
    assert flag.kill.by == "controller" and "error_rate" in flag.kill.reason


def test_status_is_not_rewritten_while_the_words_stay(services: Services, clock: FakeClock) -> None:
    seed(services, auto_advance=False, bake="0s")
    outcomes(services, clock, treatment=(1000, 5), control=(9000, 45))
    controller = build_controller(services)
    controller.tick(clock())
    first = services.flags.get(KEY).status
    assert first is not None and first.decision == "awaiting_approval"
    clock.advance(5)
    controller.tick(clock())
    assert services.flags.get(KEY).status == first
    assert services.flags.get(KEY).stage == 0


def test_killed_and_draft_flags_are_never_touched(services: Services, clock: FakeClock) -> None:
    seed(services)
    services.flags.kill(KEY, reason="operator", actor="ops")
    services.flags.create("DRAFT", actor="t", stages=[{"percent": 10}])
    before = services.flags.audit(limit=100)
    assert build_controller(services).tick(clock()) == []
    assert services.flags.audit(limit=100) == before


def test_two_controllers_never_both_lead(real_services: Services) -> None:
    first = build_controller(real_services)
    second = build_controller(real_services)
    assert first.lead() is True
    assert second.lead() is False
    assert first.lead() is True  # renewal by the holder
    assert second.run_once() is None  # --once elsewhere refuses to act
    first.release()
    assert second.lead() is True


def test_a_new_leader_takes_over_within_the_ttl(
    redis_server_flushed: RedisProcess, real_redis: Any
) -> None:
    settings = make_settings(redis_url=redis_server_flushed.url, leader_ttl=0.5)
    services = build_services(settings, redis_client=real_redis)
    dead = build_controller(services, interval=0.1)
    assert dead.lead()  # then it "dies": no renewal, no release
    heir = build_controller(services, interval=0.1)
    assert not heir.lead()
    assert wait_until(heir.lead, timeout=5)


SCRIPT = """
import logging, sys, time
from rollout.wiring import build_controller, build_services
from rollout.settings import load_settings
services = build_services(load_settings())
controller = build_controller(services, interval=0.05)
real_tick = controller.tick
def slow_tick(now=None):
    result = real_tick(now)
    print("tick", flush=True)
    time.sleep(0.3)
    return result
controller.tick = slow_tick
import signal
signal.signal(signal.SIGTERM, lambda *a: controller.stop.set())
controller.run()
print("released", controller.lock.holder(), flush=True)
"""


def test_sigterm_finishes_the_tick_and_releases_the_lock(
    redis_server_flushed: RedisProcess, real_services: Services, tmp_path: Path
) -> None:
    env = {**os.environ, "ROLLOUT_REDIS_URL": redis_server_flushed.url}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "tick"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert out.strip().endswith("released None")
    assert build_controller(real_services).lead()


def test_run_loop_acts_until_stopped(services: Services, clock: FakeClock) -> None:
    seed(services)
    outcomes(services, clock, treatment=(400, 80), control=(3600, 36))
    controller = build_controller(services, interval=0.01)
    thread = threading.Thread(target=controller.run)
    thread.start()
    try:
        assert wait_until(lambda: services.flags.get(KEY).state is State.KILLED)
    finally:
        controller.stop.set()
        thread.join(5)
    assert not thread.is_alive()


def test_two_running_loops_never_both_act(real_services: Services) -> None:
    ticked: list[str] = []
    loops = [build_controller(real_services, interval=0.02) for _ in range(2)]
    for loop in loops:
        real_tick = loop.tick

        def counting_tick(now: float | None = None, loop: Any = loop, real: Any = real_tick) -> Any:
            ticked.append(loop.lock.owner)
            return real(now)

        loop.tick = counting_tick  # type: ignore[method-assign]
    threads = [threading.Thread(target=loop.run) for loop in loops]
    for thread in threads:
        thread.start()
    try:
        assert wait_until(lambda: len(ticked) >= 20)
    finally:
        for loop in loops:
            loop.stop.set()
        for thread in threads:
            thread.join(5)
    assert len(set(ticked)) == 1  # one leader did every tick; the other only waited


def test_one_flag_that_breaks_the_tick_does_not_stop_the_others(
    services: Services, clock: FakeClock
) -> None:
    seed(services)
    outcomes(services, clock, treatment=(400, 80), control=(3600, 36))
    services.flags.create("BROKEN", actor="t", stages=[{"percent": 10}])
    services.flags.advance("BROKEN", actor="t")
    controller = build_controller(services)
    real_evidence = services.gates.evidence

    def evidence(flag: Any, **kwargs: Any) -> Any:
        if flag.key == "BROKEN":
            raise ZeroDivisionError("a bug one flag's values trigger")
        return real_evidence(flag, **kwargs)

    controller.gates.evidence = evidence  # type: ignore[method-assign]
    [outcome] = controller.tick(clock())
    assert (outcome.key, outcome.decision.action) == (KEY, "kill")


def test_the_controller_does_not_act_on_a_version_it_did_not_judge(
    services: Services, clock: FakeClock
) -> None:
    """An operator's move lands between the read and the act: the kill is re-decided."""
    seed(services)
    outcomes(services, clock, treatment=(400, 80), control=(3600, 36))
    controller = build_controller(services)
    real_kill = services.flags.kill
    moved: list[bool] = []

    def kill_after_a_revive_elsewhere(key: str, **kwargs: Any) -> Any:
        if not moved:
            moved.append(True)
            clock.advance(1)
            services.flags.set_percent(KEY, 20, actor="operator")  # new epoch: no evidence yet
        return real_kill(key, **kwargs)

    services.flags.kill = kill_after_a_revive_elsewhere  # type: ignore[method-assign]
    [outcome] = controller.tick(clock())
    assert outcome.decision.action == "hold"  # re-decided on the fresh stage: no evidence
    assert services.flags.get(KEY).state is State.ROLLING


def test_a_flag_killed_between_the_read_and_the_act_gets_no_status_word(
    services: Services, clock: FakeClock
) -> None:
    """An operator's kill beats the controller's advance: the controller leaves the flag be."""
    services.flags.create(
        KEY, actor="t", stages=[{"percent": 10, "bake": "1s"}, {"percent": 50}], auto_advance=True
    )
    services.flags.advance(KEY, actor="t")
    clock.advance(5)
    controller = build_controller(services)
    real_advance = services.flags.advance

    def advance_after_a_kill_elsewhere(key: str, **kwargs: Any) -> Any:
        services.flags.kill(key, reason="operator saw an incident", actor="operator")
        return real_advance(key, **kwargs)

    services.flags.advance = advance_after_a_kill_elsewhere  # type: ignore[method-assign]
    [outcome] = controller.tick(clock())
    assert outcome.decision.action == "advance" and outcome.acted is False
    flag = services.flags.get(KEY)
    assert flag.state is State.KILLED and flag.status is None
