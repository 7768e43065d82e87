"""GET /api/v1/flags/{key}/metrics: the history behind the charts, per step and arm."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from rollout.core.bounds import Moments
from rollout.core.histogram import bucket_upper_ms
from rollout.core.units import render_instant
from rollout.services.container import Services
from rollout.storage.keys import Keys
from rollout.storage.metrics import Batch
from tests.api.conftest import ADMIN, READ, create, error_of
from tests.support import FakeClock

KEYS = Keys()  # the default prefix, as the services use
STAGES = [{"percent": 10, "bake": "1h"}, {"percent": 50}, {"percent": 100}]


def flush(
    services: Services,
    at: float,
    *,
    treatment: tuple[int, int] = (0, 0),
    control: tuple[int, int] = (0, 0),
    bucket: int = 40,
    memory: float | None = None,
    key: str = "F",
) -> None:
    """Outcomes (samples, errors) per arm, flushed as an SDK would at instant ``at``."""
    flag = services.flags.get(key)
    epoch = flag.stage_started_at or 0
    batch = Batch()
    for arm, (samples, errors) in (("treatment", treatment), ("control", control)):
        if samples:
            tally = batch.tally(key, epoch, arm)
            tally.samples, tally.errors, tally.exposures = samples, errors, samples * 2
            if errors:
                tally.errors_by_type["Timeout"] = errors
            tally.latency = {bucket: samples}
    if memory is not None:
        batch.memory_mb[(key, epoch)] = memory
    services.gates.metrics.flush(batch, now=at, process="proc-1")


def metrics(client: FlaskClient, query: str = "", key: str = "F") -> Any:
    response = client.get(f"/api/v1/flags/{key}/metrics{query}", headers=READ)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def rolling(client: FlaskClient) -> None:
    create(client, stages=STAGES)
    assert client.post("/api/v1/flags/F/advance", headers=ADMIN).status_code == 200


def test_default_is_the_current_stage_in_10s_steps(
    client: FlaskClient, services: Services, clock: FakeClock
) -> None:
    rolling(client)
    start = clock.now
    flush(services, start + 1, treatment=(30, 3), control=(270, 2))
    flush(services, start + 2, treatment=(10, 1), control=(90, 0))
    flush(services, start + 25, treatment=(5, 0), control=(45, 0), bucket=60)
    clock.advance(40)
    body = metrics(client)
    assert body["flag"] == "F" and body["step"] == 10
    assert body["since"] == render_instant(int(start * 1000))
    treatment, control = body["series"]["treatment"], body["series"]["control"]
    assert len(treatment) == len(control) == 5  # 0-10, 10-20, 20-30, 30-40, 40-...
    first = treatment[0]
    assert (first["samples"], first["errors"], first["exposures"]) == (40, 4, 80)
    assert first["error_rate"] == 0.1 and first["errors_by_type"] == {"Timeout": 4}
    assert first["p50_ms"] == first["p95_ms"] == first["p99_ms"] == bucket_upper_ms(40)
    assert first["values"] == {}
    assert treatment[1]["samples"] == 0 and treatment[1]["error_rate"] is None
    assert treatment[2]["samples"] == 5 and treatment[2]["p95_ms"] == bucket_upper_ms(60)
    assert [p["samples"] for p in control] == [360, 0, 45, 0, 0]
    (stage,) = body["stages"]
    assert stage == {
        "percent": 10,
        "started_at": render_instant(int(start * 1000)),
        "ended_at": None,
        "ended_by": None,
    }


def test_five_minute_steps_come_from_rollups(
    client: FlaskClient, services: Services, clock: FakeClock
) -> None:
    rolling(client)
    start = clock.now
    for minute in range(0, 60, 2):  # 30 flushes of 10 treatment samples, one error each
        flush(services, start + minute * 60, treatment=(10, 1), control=(90, 1), memory=minute)
    clock.advance(3600)
    body = metrics(client, "?step=5m")
    assert body["step"] == 300
    samples = [p["samples"] for p in body["series"]["treatment"]]
    assert sum(samples) == 300 and sum(p["errors"] for p in body["series"]["control"]) == 30
    assert max(samples) <= 30
    memory = body["memory_mb"]
    assert memory[-1]["max"] == 58.0 and len(memory) == len({m["at"] for m in memory})


def test_a_range_older_than_the_windows_defaults_to_rollups(
    client: FlaskClient, services: Services, clock: FakeClock
) -> None:
    rolling(client)
    start = clock.now
    flush(services, start + 5, treatment=(7, 0), control=(63, 0))
    clock.advance(3 * 86400)  # a 3-day stage: windows are gone, rollups are not
    body = metrics(client)
    assert body["step"] == 300 and len(body["series"]["treatment"]) == 864 + 1
    assert body["series"]["treatment"][0]["samples"] == 7
    fine = client.get("/api/v1/flags/F/metrics?step=1m", headers=READ)
    assert fine.status_code == 422 and error_of(fine)["field"] == "step"


def test_stages_and_series_across_an_advance(
    client: FlaskClient, services: Services, clock: FakeClock
) -> None:
    rolling(client)
    first_start = clock.now
    flush(services, clock.now + 5, treatment=(10, 0), control=(90, 0))
    clock.advance(600)
    assert client.post("/api/v1/flags/F/advance", headers=ADMIN).status_code == 200
    flush(services, clock.now + 5, treatment=(50, 5), control=(50, 0))
    clock.advance(60)
    since = int(first_start)
    body = metrics(client, f"?since={since}&step=1m")
    ten, fifty = body["stages"]
    assert (ten["percent"], ten["ended_by"], fifty["percent"], fifty["ended_by"]) == (
        10,
        "advance",
        50,
        None,
    )
    assert ten["ended_at"] == fifty["started_at"]
    treatment = body["series"]["treatment"]
    assert sum(p["samples"] for p in treatment) == 60
    assert treatment[0]["samples"] == 10 and treatment[10]["samples"] == 50
    only_now = metrics(client)  # the default: the current stage alone
    assert len(only_now["stages"]) == 1
    assert sum(p["samples"] for p in only_now["series"]["treatment"]) == 50


def test_bad_parameters_are_422_naming_them(client: FlaskClient, clock: FakeClock) -> None:
    rolling(client)
    clock.advance(60)
    for query, field in (
        ("?since=yesterday", "since"),
        ("?until=later", "until"),
        ("?step=fast", "step"),
        ("?step=7s", "step"),
        ("?step=0", "step"),
        (f"?since={int(clock.now) + 10}", "since"),
        (f"?since={int(clock.now) - 86400}&step=10s", "step"),  # 8,641 steps
    ):
        response = client.get(f"/api/v1/flags/F/metrics{query}", headers=READ)
        assert response.status_code == 422, query
        assert error_of(response)["field"] == field, query


def test_an_explicit_step_may_not_exceed_2000_steps_but_the_default_adapts(
    client: FlaskClient, clock: FakeClock
) -> None:
    rolling(client)
    clock.advance(86400)
    since = int(clock.now) - 86400
    assert metrics(client, f"?since={since}")["step"] == 300  # 289 steps, from the rollups
    month = since - 86400 * 30
    response = client.get(f"/api/v1/flags/F/metrics?since={month}", headers=READ)
    assert response.get_json()["step"] == 1800  # 31 days: the finest with at most 2,000 steps
    too_many = client.get(f"/api/v1/flags/F/metrics?since={month}&step=5m", headers=READ)
    assert too_many.status_code == 422 and "2000" in error_of(too_many)["message"]


def test_iso_instants_and_a_draft(client: FlaskClient, clock: FakeClock) -> None:
    create(client, stages=STAGES)
    clock.advance(30)
    body = metrics(client, f"?since={render_instant(int((clock.now - 20) * 1000))}")
    assert body["stages"] == [] and body["step"] == 10
    assert all(p["samples"] == 0 for p in body["series"]["control"])


def test_unknown_flag_and_tokens(client: FlaskClient) -> None:
    response = client.get("/api/v1/flags/NOPE/metrics", headers=READ)
    assert response.status_code == 404 and error_of(response)["code"] == "flag_not_found"
    assert client.get("/api/v1/flags/F/metrics").status_code == 401


def test_packed_history_expires_on_its_own_clocks(
    client: FlaskClient, services: Services, clock: FakeClock, any_redis: Any
) -> None:
    rolling(client)
    flush(services, clock.now, treatment=(1, 1), control=(9, 0), memory=3.0)
    epoch = services.flags.get("F").stage_started_at or 0
    keys = KEYS
    for res, seconds, group, ttl in (("f", 10, 360, 6 * 3600), ("c", 300, 288, 30 * 86400)):
        span = int(clock.now // seconds)
        for name in (
            keys.history_counts("F", res, epoch, span),
            keys.history_types("F", res, epoch, span // group),
            keys.history_memory("F", res, epoch, span // group),
        ):
            assert ttl - 5 <= any_redis.ttl(name) <= ttl, name
        assert any_redis.hgetall(keys.history_types("F", res, epoch, span // group)) == {
            f"{span}:t:Timeout": "1"
        }
    # The treatment's error type is in its window's and stage's hashes; the control had none.
    window = keys.window_metrics("F", epoch, int(clock.now // 10), "treatment")
    assert 6 * 3600 - 5 <= any_redis.ttl(window) <= 6 * 3600
    assert any_redis.ttl(keys.stage_metrics("F", epoch, "treatment")) == -1
    assert any_redis.ttl(keys.stage_counts("F", epoch)) == -1
    assert not any_redis.exists(keys.window_metrics("F", epoch, int(clock.now // 10), "control"))


def test_memory_keeps_the_highest_report_per_step(
    client: FlaskClient, services: Services, clock: FakeClock
) -> None:
    rolling(client)
    for at, megabytes in ((1, 10.0), (2, 30.0), (3, 20.0), (15, 5.0)):
        flush(services, clock.now + at, treatment=(1, 0), memory=megabytes)
    clock.advance(20)
    memory = metrics(client)["memory_mb"]
    assert [m["max"] for m in memory] == [30.0, 5.0]


def test_the_report_route(client: FlaskClient, services: Services, clock: FakeClock) -> None:
    rolling(client)
    flush(services, clock.now + 1, treatment=(30, 3), control=(270, 2))
    clock.advance(60)
    kill = client.post("/api/v1/flags/F/kill", json={"reason": "spike"}, headers=ADMIN)
    assert kill.status_code == 200
    response = client.get("/api/v1/flags/F/report", headers=READ)
    assert response.status_code == 200
    body = response.get_json()
    assert [e["action"] for e in body["timeline"]] == ["create", "advance", "kill"]
    (summary,) = body["summaries"]
    assert (summary["ended_by"], summary["by"], summary["reason"]) == ("kill", "alice", "spike")
    assert summary["arms"]["treatment"]["samples"] == 30
    assert body["plan"]["stages"][0]["percent"] == 10 and body["current"] is None
    assert body["totals"]["loads"] == 30 + 60 + 270 + 540
    assert body["decisions"][0]["verdict"] == "no-go"
    missing = client.get("/api/v1/flags/NOPE/report", headers=READ)
    assert missing.status_code == 404 and error_of(missing)["code"] == "flag_not_found"


def test_business_values_are_in_every_step_at_both_resolutions(
    client: FlaskClient, services: Services, clock: FakeClock
) -> None:
    """Each step carries each value's count and mean, merged exactly across processes and
    spans (Chan's formula in the flush script, again when a step covers several spans)."""
    rolling(client)
    start = clock.now
    epoch = services.flags.get("F").stage_started_at or 0

    def observe(at: float, process: str, arm: str, moments: Moments) -> None:
        batch = Batch()
        tally = batch.tally("F", epoch, arm)
        tally.samples = moments.n
        tally.values = {"improvement_delta": moments}
        services.gates.metrics.flush(batch, now=at, process=process)

    observe(start + 1, "proc-1", "treatment", Moments(2, 1.0, 0.5))
    observe(start + 2, "proc-2", "treatment", Moments(3, 2.0, 1.0))
    observe(start + 25, "proc-1", "treatment", Moments(5, 4.0, 2.0))
    observe(start + 25, "proc-2", "control", Moments(4, 0.5, 0.2))
    clock.advance(40)
    fine = metrics(client)["series"]
    assert [p["values"] for p in fine["treatment"][:3]] == [
        {"improvement_delta": {"n": 5, "mean": 1.6}},
        {},
        {"improvement_delta": {"n": 5, "mean": 4.0}},
    ]
    assert fine["control"][2]["values"] == {"improvement_delta": {"n": 4, "mean": 0.5}}
    assert fine["control"][0]["values"] == {}
    since = render_instant(int(start // 300 * 300 * 1000))
    coarse = metrics(client, f"?since={since}&step=300")["series"]
    (step,) = [p for p in coarse["treatment"] if p["values"]]
    assert step["values"] == {"improvement_delta": {"n": 10, "mean": 2.8}}
    (step,) = [p for p in coarse["control"] if p["values"]]
    assert step["values"] == {"improvement_delta": {"n": 4, "mean": 0.5}}
