"""Stage summaries: written once after the move that ends a stage, kept, snapshotted, deleted."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from rollout.core.defaults import HISTORY_RETENTION
from rollout.core.units import render_instant
from rollout.services.container import Services
from rollout.services.summaries import SummaryService
from rollout.storage.connection import client_for_url
from rollout.storage.history import HistoryStore
from rollout.storage.keys import Keys
from rollout.storage.metrics import Batch, MetricsStore
from tests.support import FakeClock

KEYS = Keys()  # the default prefix, as the services use
STAGES = [{"percent": 10, "bake": "1h", "min_samples": 500}, {"percent": 50}, {"percent": 100}]
GATES = [
    {"metric": "error_rate", "warn": 0.05, "critical": 0.10, "min_samples": 100},
    {"metric": "latency_ratio", "warn": 1.2, "critical": 1.5, "min_samples": 100},
]


def flush(services: Services, treatment: tuple[int, int], control: tuple[int, int]) -> None:
    flag = services.flags.get("F")
    epoch = flag.stage_started_at or 0
    batch = Batch()
    for arm, (samples, errors) in (("treatment", treatment), ("control", control)):
        tally = batch.tally("F", epoch, arm)
        tally.samples, tally.errors, tally.exposures = samples, errors, 3 * samples
        tally.errors_by_type["Boom"] = errors
        tally.latency = {40: samples - 10, 70: 10}
    batch.memory_mb[("F", epoch)] = 12.5
    services.gates.metrics.flush(batch, now=services.clock(), process="p1")


def rolling(services: Services) -> int:
    services.flags.create("F", actor="setup", stages=STAGES, gates=GATES)
    return services.flags.advance("F", actor="alice").stage_started_at or 0


def summaries(services: Services) -> list[dict[str, Any]]:
    assert services.summaries.drain()
    return services.summaries.of("F")


def test_an_advance_stores_the_stage_with_exact_counts(
    services: Services, clock: FakeClock
) -> None:
    epoch = rolling(services)
    flush(services, treatment=(400, 8), control=(3600, 36))
    clock.advance(600)
    flush(services, treatment=(100, 2), control=(900, 9))
    clock.advance(3000)
    services.flags.advance("F", actor="bob", reason="looks good", force=True)
    (summary,) = summaries(services)
    assert summary["epoch"] == epoch and summary["stage"] == 0 and summary["percent"] == 10
    assert summary["started_at"] == render_instant(epoch)
    assert summary["ended_at"] == render_instant(epoch + 3_600_000)
    ended = (summary["ended_by"], summary["by"], summary["reason"])
    assert ended == ("advance", "bob", "looks good")
    treatment, control = summary["arms"]["treatment"], summary["arms"]["control"]
    assert (treatment["samples"], treatment["errors"], treatment["exposures"]) == (500, 10, 1500)
    assert (control["samples"], control["errors"], control["exposures"]) == (4500, 45, 13500)
    assert treatment["error_rate"] == 0.02 and control["errors_by_type"] == {"Boom": 45}
    low, high = treatment["error_rate_interval"]["low"], treatment["error_rate_interval"]["high"]
    assert 0 < low < 0.02 < high < 0.1
    assert treatment["p50_ms"] is not None and treatment["p99_ms"] > treatment["p50_ms"]
    assert treatment["values"] == {} and summary["memory_mb"] == 12.5
    assert summary["min_samples"] == 500
    verdicts = {g["metric"]: g["verdict"] for g in summary["gates"]}
    assert verdicts == {"error_rate": "pass", "latency_ratio": "pass"}


def test_a_kill_summary_and_the_stage_totals_lifetime(
    services: Services, clock: FakeClock, any_redis: Any
) -> None:
    epoch = rolling(services)
    flush(services, treatment=(400, 100), control=(3600, 36))
    total = KEYS.stage_metrics("F", epoch, "treatment")
    assert any_redis.ttl(total) == -1  # no TTL while the stage lasts
    clock.advance(8 * 3600)  # a quiet night: the evidence is still there
    assert services.gates.evidence(services.flags.get("F")).stage.treatment.samples == 400
    services.flags.kill("F", reason="error spike", actor="controller")
    (summary,) = summaries(services)
    assert (summary["ended_by"], summary["by"], summary["reason"]) == (
        "kill",
        "controller",
        "error spike",
    )
    assert summary["arms"]["treatment"]["errors"] == 100
    assert {g["metric"]: g["verdict"] for g in summary["gates"]}["error_rate"] == "fail"
    assert 0 < any_redis.ttl(total) <= HISTORY_RETENTION  # ended: expires with the rollups
    assert 0 < any_redis.ttl(KEYS.memory("F", epoch)) <= HISTORY_RETENTION
    services.flags.revive("F", actor="alice")
    assert len(summaries(services)) == 1  # the revive starts a stage; the kill ended the last


def test_the_summary_write_is_idempotent(
    services: Services, any_redis: Any, clock: FakeClock
) -> None:
    rolling(services)
    flush(services, treatment=(10, 1), control=(90, 1))
    clock.advance(1)  # a stage is its epoch: one that began in the same ms would be the same
    moved = services.flags.set_percent("F", 25, actor="alice")
    (first,) = summaries(services)
    stored = any_redis.hgetall(KEYS.summaries("F"))
    assert services.summaries.handle("F", moved.version) == "exists"
    flush(services, treatment=(5, 5), control=(5, 5))  # even with other data, nothing changes
    # Another process: its own stores over the same Redis.
    other = SummaryService(
        HistoryStore(any_redis, KEYS, HISTORY_RETENTION), MetricsStore(any_redis, KEYS, 60)
    )
    assert other.handle("F", moved.version) == "exists"
    assert any_redis.hgetall(KEYS.summaries("F")) == stored
    assert first["ended_by"] == "set"
    assert services.summaries.handle("F", moved.version - 1) is None  # the advance ended none


def test_every_ending_move_is_summarized(services: Services, clock: FakeClock) -> None:
    rolling(services)
    for move in ("advance", "advance", "advance"):
        clock.advance(60)
        getattr(services.flags, move)("F", actor="alice", force=True)
    clock.advance(60)
    services.flags.rollback("F", actor="alice")
    services.flags.pause("F", actor="alice")  # no stage ends
    services.flags.update("F", {"description": "x"}, actor="alice")
    ended = [(s["percent"], s["ended_by"]) for s in summaries(services)]
    assert ended == [(10, "advance"), (50, "advance"), (100, "complete"), (100, "rollback")]


def test_summaries_are_in_snapshots_and_restore_exactly(
    services: Services, clock: FakeClock
) -> None:
    rolling(services)
    flush(services, treatment=(40, 1), control=(360, 2))
    clock.advance(60)
    services.flags.advance("F", actor="alice")
    document = services.snapshots.take()
    saved = document["summaries"]["F"]
    assert [s["percent"] for s in saved] == [10]
    clock.advance(60)
    services.flags.advance("F", actor="oops")
    services.flags.kill("F", reason="x", actor="oops")
    assert len(summaries(services)) == 3
    services.snapshots.restore(document, actor="restorer")
    assert summaries(services) == saved
    again = services.snapshots.take()
    assert again["summaries"] == document["summaries"] and again["flags"][0]["percent"] == 50


def test_summaries_go_with_the_flag(services: Services, any_redis: Any, clock: FakeClock) -> None:
    epoch = rolling(services)
    flush(services, treatment=(10, 1), control=(90, 1))
    clock.advance(1)
    services.flags.set_percent("F", 30, actor="alice")
    assert summaries(services)
    current = services.flags.get("F").stage_started_at or 0
    flush(services, treatment=(10, 1), control=(90, 1))
    services.flags.delete("F", actor="alice")
    assert summaries(services) == []
    assert not any_redis.exists(KEYS.summaries("F"))
    for stage in (epoch, current):  # no stage total is left without a TTL
        assert any_redis.ttl(KEYS.stage_metrics("F", stage, "treatment")) > 0
    snapshot = services.snapshots.take()
    assert snapshot["summaries"] == {}


def test_a_failing_summary_never_fails_the_move(
    services: Services, any_redis: Any, caplog: pytest.LogCaptureFixture, closed_port: int
) -> None:
    down = client_for_url(f"redis://127.0.0.1:{closed_port}", socket_timeout=0.2)
    broken = SummaryService(
        HistoryStore(any_redis, KEYS, HISTORY_RETENTION), MetricsStore(down, KEYS, 60)
    )
    services.flags.listeners.append(broken.after_write)
    rolling(services)
    with caplog.at_level(logging.ERROR, logger="rollout.summaries"):
        killed = services.flags.kill("F", reason="now", actor="alice")
        assert broken.drain()
    assert str(killed.state) == "killed"
    assert "summary of F" in caplog.text
    down.close()
