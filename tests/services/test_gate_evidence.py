"""Gate readings from evidence that real SDK clients flushed into a real redis-server.

The SDK clients and the services share one injected clock, so windows and memory reports move
only when a test advances it.
"""

from __future__ import annotations

from typing import Any

import pytest

from rollout.core.model import Flag
from rollout.services.container import Services
from tests.evidence import ERROR_GATE, Memory, record, sdk, users
from tests.support import FakeClock

MEMORY_GATE = {"metric": "memory_mb", "warn": 75, "critical": 100}
STAGES = [{"percent": 50}, {"percent": 100}]


def rolling(services: Services, *gates: dict[str, Any]) -> Flag:
    services.flags.create("F", actor="t", stages=STAGES, gates=list(gates))
    return services.flags.advance("F", actor="t")


@pytest.fixture
def url(real_url: str) -> str:
    return real_url


@pytest.fixture
def memory_gated(real_services: Services) -> Flag:
    return rolling(real_services, MEMORY_GATE)


def gate(services: Services, flag: Flag, metric: str) -> dict[str, Any]:
    report = services.gates.report(flag)
    (found,) = (g for g in report["gates"] if g["metric"] == metric)
    return {"memory_mb": report["memory_mb"], **found}


def test_memory_gate_reads_the_highest_growth_of_any_treatment_process(
    real_services: Services, memory_gated: Flag, url: str, clock: FakeClock
) -> None:
    flag = memory_gated
    small, large = Memory(200), Memory(300)
    with (
        sdk(url, flag, clock, memory_probe=small) as one,
        sdk(url, flag, clock, memory_probe=large) as two,
    ):
        small.mb, large.mb = 230, 380  # growth since each started: 30 MB and 80 MB
        record(one, flag, treatment_ok=5)
        record(two, flag, treatment_ok=5)
        reading = gate(real_services, flag, "memory_mb")
        assert (reading["memory_mb"], reading["verdict"]) == (80.0, "warn")
        small.mb = 320  # 120 MB: the first process now grows past critical
        clock.advance(5)  # a process reports its memory every 5 s
        record(one, flag, treatment_ok=1)
        reading = gate(real_services, flag, "memory_mb")
        assert (reading["memory_mb"], reading["verdict"]) == (120.0, "fail")
        assert "120 MB growth in a treatment process" in reading["why"]
    assert list(real_services.gates.failing(flag)) == ["memory_mb"]


def test_a_process_serving_only_control_is_ignored_by_the_memory_gate(
    real_services: Services, memory_gated: Flag, url: str, clock: FakeClock
) -> None:
    flag = memory_gated
    control_only, treatment = Memory(200), Memory(200)
    with sdk(url, flag, clock, memory_probe=control_only) as client:
        control_only.mb = 900  # 700 MB of growth, but none of it from the change
        for user in users(flag, treatment=False, n=50):
            client.flag("F").is_enabled(user)
        record(client, flag, control_ok=50, control_errors=5)
        clock.advance(30)
        client.flush()  # due for a memory report again: still nothing to report
    evidence = real_services.gates.evidence(flag)
    assert (evidence.stage.control.samples, evidence.stage.control.exposures) == (55, 50)
    reading = gate(real_services, flag, "memory_mb")
    assert (reading["memory_mb"], reading["verdict"]) == (None, "insufficient")
    with sdk(url, flag, clock, memory_probe=treatment) as client:
        treatment.mb = 210
        record(client, flag, treatment_ok=1)
    reading = gate(real_services, flag, "memory_mb")
    assert (reading["memory_mb"], reading["verdict"]) == (10.0, "pass")


def test_the_window_reads_only_its_trailing_seconds(
    real_services: Services, url: str, clock: FakeClock
) -> None:
    """A burst of errors a while ago fails the stage, not the 60 s window that came after."""
    flag = rolling(real_services, ERROR_GATE)
    with sdk(url, flag, clock) as client:
        record(client, flag, treatment_errors=60, control_ok=60)
        clock.advance(120)
        record(client, flag, treatment_ok=40, control_ok=40)
    readings = gate(real_services, flag, "error_rate")["readings"]
    window, stage = readings["window"], readings["stage"]
    assert (window["samples"], window["value"], window["verdict"]) == (40, 0.0, "pass")
    assert (stage["samples"], stage["value"], stage["verdict"]) == (100, 0.6, "fail")
    assert window["control_samples"] == 40 and stage["control_samples"] == 100


def test_metrics_keys_live_for_the_configured_retention(
    real_services: Services,
    url: str,
    clock: FakeClock,
    real_redis: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``ROLLOUT_METRICS_RETENTION`` from the environment, as an SDK process reads it."""
    monkeypatch.setenv("ROLLOUT_METRICS_RETENTION", "4321")
    flag = rolling(real_services, MEMORY_GATE)
    with sdk(url, flag, clock) as client:
        assert client.settings.metrics_retention == 4321
        record(client, flag, treatment_ok=3, control_ok=2)
    names = list(real_redis.scan_iter(match="rollout:{F}:*"))
    kinds: dict[str, list[str]] = {}
    for name in names:
        kinds.setdefault(name.split(":")[2], []).append(name)
    # The 10-second history (which holds the gates' windows) lives for the retention...
    windowed = kinds["hf"] + kinds.get("hfm", [])
    assert len(kinds["hf"]) == 1 and "w" not in kinds  # no error types, no values: no hashes
    assert all(4320 <= real_redis.ttl(name) <= 4321 for name in windowed), windowed
    # ...while the stage's packed totals and memory gauge last as long as the stage does.
    assert len(kinds["sc"]) == 1 and len(kinds["mem"]) == 1 and "s" not in kinds
    assert all(real_redis.ttl(name) == -1 for name in kinds["sc"] + kinds["mem"])
