"""Business values and sample ratio mismatch end to end (issue 10): real redis-server, real SDK
clients recording through ``flag.record(values=...)``, the controller at 50 ms ticks."""

from __future__ import annotations

import pytest

from rollout.core.model import State
from rollout.storage.redis_process import RedisProcess
from tests.acceptance.harness import KEY, REFERENCE_GATES, run_until, world

pytestmark = pytest.mark.slow

VALUE_GATE = {
    "metric": "value:improvement_delta",
    "direction": "higher_is_better",
    "warn": -0.02,
    "critical": -0.05,
    "min_samples": 200,
}
GATES = [*REFERENCE_GATES, VALUE_GATE]


def test_a_value_20_percent_below_control_is_killed_naming_the_value_and_figures(
    redis_server_flushed: RedisProcess,
) -> None:
    with world(redis_server_flushed, gates=GATES) as w:
        killed = run_until(
            w, lambda: w.flag().state is State.KILLED, users=1000, values=(0.8, 1.0), timeout=90
        )
        assert killed, w.flag().status
        flag = w.flag()
        assert flag.kill is not None and flag.kill.by == "controller"
        reason = flag.kill.reason
        assert "value:improvement_delta relative change -" in reason, reason
        assert "≤ critical -5%" in reason and "treatment mean 0.8" in reason
        assert "control mean 1" in reason
        assert flag.kill.stage_before == 0  # killed at 10%: never offered an advance


def test_a_1_percent_drop_holds_up_and_is_never_killed(redis_server_flushed: RedisProcess) -> None:
    with world(redis_server_flushed, gates=GATES) as w:
        for _ in range(12):
            w.traffic(1000, values=(0.99, 1.0))
            w.settle(2)
            assert w.flag().state is not State.KILLED, w.flag().kill
        actions = [e["action"] for e in w.services.flags.audit(KEY, limit=50)]
        assert "kill" not in actions
        value = next(
            g for g in w.services.gates.report(w.flag())["gates"] if g["metric"].startswith("value")
        )
        assert value["verdict"] != "fail", value["why"]


def test_outcomes_from_the_treatment_only_raise_a_mismatch_and_never_advance(
    redis_server_flushed: RedisProcess,
) -> None:
    # error_rate alone: with no control outcomes it judges absolutely, and 1% passes, so the
    # mismatch is the one thing that holds the flag.
    with world(redis_server_flushed, gates=REFERENCE_GATES[:1]) as w:
        for _ in range(10):
            w.traffic(1000, control_records=False)
            w.settle(2)
            assert (w.flag().state, w.flag().stage) == (State.ROLLING, 0)
        flag = w.flag()
        assert flag.status is not None and flag.status.decision == "sample_ratio_mismatch"
        assert "treatment share of samples 100%" in flag.status.why
        assert "expected 10%" in flag.status.why
        srm = w.services.gates.report(flag)["srm"]
        assert srm["verdict"] == "mismatch" and srm["observed"]["samples"] == 1.0
        # The exposures agree with the split: only the instrumentation is broken.
        assert 0.05 < (srm["observed"]["exposures"] or 0) < 0.15


def test_with_srm_warn_the_same_flag_advances(redis_server_flushed: RedisProcess) -> None:
    with world(redis_server_flushed, gates=REFERENCE_GATES[:1], srm="warn") as w:
        assert run_until(w, lambda: (w.flag().stage or 0) >= 1, control_records=False)
