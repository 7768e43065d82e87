"""DESIGN §4 end to end: real redis-server, real SDK clients, the controller at 50 ms ticks."""

from __future__ import annotations

import pytest

from rollout.core import histogram
from rollout.core.model import State
from rollout.storage.redis_process import RedisProcess
from tests.acceptance.harness import KEY, run_until, world
from tests.support import wait_until

pytestmark = pytest.mark.slow


def test_treatment_errors_kill_the_flag_for_every_client(
    redis_server_flushed: RedisProcess,
) -> None:
    with world(redis_server_flushed) as w:
        assert run_until(w, lambda: w.flag().state is State.KILLED, t_err=0.20, c_err=0.01)
        flag = w.flag()
        assert flag.kill is not None and flag.kill.by == "controller"
        assert "error_rate" in flag.kill.reason
        assert wait_until(w.everyone_off, timeout=5)
        entry = w.services.flags.audit(KEY, limit=1)[0]
        assert (entry["actor"], entry["action"]) == ("controller", "kill")


def test_healthy_flag_advances_through_every_stage(redis_server_flushed: RedisProcess) -> None:
    with world(redis_server_flushed) as w:
        assert run_until(w, lambda: w.flag().state is State.COMPLETE, timeout=90)
        flag = w.flag()
        assert flag.percent_bp == 10_000
        # Control's p95 when the last stage began: its latencies are 18-22 ms, so the upper
        # bound of the histogram bucket holding it is above 18 and at most one bucket past 22.
        assert flag.baseline_p95_ms is not None
        assert 18 < flag.baseline_p95_ms <= 22 * histogram.GROWTH
        actions = [e["action"] for e in w.services.flags.audit(KEY, limit=20)]
        assert actions[:3] == ["advance", "advance", "advance"]


def test_shared_outage_is_not_the_flags_fault(redis_server_flushed: RedisProcess) -> None:
    with world(redis_server_flushed) as w:
        for _ in range(12):
            w.traffic(1000, t_err=0.15, c_err=0.15)
            w.settle(2)
            assert w.flag().state is State.ROLLING
        flag = w.flag()
        assert flag.stage == 0 and flag.status is not None
        assert flag.status.decision == "hold" and "error_rate" in flag.status.why


def test_latency_twice_control_kills(redis_server_flushed: RedisProcess) -> None:
    with world(redis_server_flushed) as w:
        assert run_until(w, lambda: w.flag().state is State.KILLED, t_ms=40.0, c_ms=20.0)
        assert w.flag().kill is not None and "latency_ratio" in w.flag().kill.reason  # type: ignore[union-attr]


def test_latency_1_3x_holds_at_warn_and_never_advances(
    redis_server_flushed: RedisProcess,
) -> None:
    with world(redis_server_flushed) as w:
        for _ in range(10):
            w.traffic(800, t_ms=26.0, c_ms=20.0)
            w.settle(2)
        flag = w.flag()
        assert (flag.state, flag.stage) == (State.ROLLING, 0)
        assert flag.status is not None and flag.status.decision == "hold"
        assert "latency_ratio" in flag.status.why and "warn" in flag.status.why


def test_memory_growth_of_a_treatment_process_kills(redis_server_flushed: RedisProcess) -> None:
    with world(redis_server_flushed) as w:
        w.memory[0].mb += 120
        assert run_until(w, lambda: w.flag().state is State.KILLED)
        assert "memory_mb" in w.flag().kill.reason  # type: ignore[union-attr]


def test_paused_flag_never_advances_yet_is_killed_on_fail(
    redis_server_flushed: RedisProcess,
) -> None:
    with world(redis_server_flushed) as w:
        w.services.flags.pause(KEY, actor="test")
        for _ in range(6):
            w.traffic(800)
            w.settle(2)
        flag = w.flag()
        assert (flag.state, flag.stage) == (State.PAUSED, 0)
        assert flag.status is not None and "paused" in flag.status.why
        assert run_until(w, lambda: w.flag().state is State.KILLED, t_err=0.25)
        assert w.flag().kill.state_before is State.PAUSED  # type: ignore[union-attr]


def test_without_auto_advance_the_flag_awaits_approval(redis_server_flushed: RedisProcess) -> None:
    with world(redis_server_flushed, auto_advance=False) as w:
        assert run_until(
            w,
            lambda: w.flag().status is not None and w.flag().status.decision == "awaiting_approval",  # type: ignore[union-attr]
        )
        w.traffic(500)
        w.settle(3)
        assert w.flag().stage == 0
        w.services.flags.advance(KEY, actor="operator")  # the Go
        assert w.flag().stage == 1


def test_after_revive_old_evidence_does_not_kill_again(redis_server_flushed: RedisProcess) -> None:
    with world(redis_server_flushed) as w:
        assert run_until(w, lambda: w.flag().state is State.KILLED, t_err=0.3)
        revived = w.services.flags.revive(KEY, actor="operator")
        assert (revived.state, revived.stage) == (State.ROLLING, 0)
        w.settle(5)
        assert w.flag().state is State.ROLLING
        w.traffic(1500)  # healthy evidence after the revive
        w.settle(3)
        assert w.flag().state is State.ROLLING
