"""GET /api/v1/flags/{key}/gates and the per-arm and controller figures of /metrics."""

from __future__ import annotations

from flask.testing import FlaskClient

from rollout.services.container import Services
from rollout.storage.metrics import Batch
from rollout.wiring import build_controller
from tests.api.conftest import ADMIN, READ, create, error_of

GATES = [
    {"metric": "error_rate", "warn": 0.05, "critical": 0.10, "min_samples": 100},
    {"metric": "latency_ratio", "warn": 1.2, "critical": 1.5, "min_samples": 100},
]


def rolling_with_evidence(client: FlaskClient, services: Services) -> None:
    create(client, gates=GATES, stages=[{"percent": 10, "bake": "1h"}, {"percent": 100}])
    assert client.post("/api/v1/flags/F/advance", headers=ADMIN).status_code == 200
    flag = services.flags.get("F")
    batch = Batch()
    for arm, samples, errors in (("treatment", 400, 100), ("control", 3600, 36)):
        tally = batch.tally("F", flag.stage_started_at or 0, arm)
        tally.samples, tally.errors = samples, errors
        tally.errors_by_type["Boom"] = errors
        tally.latency = {40: samples}
    services.gates.metrics.flush(batch, now=services.clock(), process="test")


def test_gates_report_per_gate_and_arm(client: FlaskClient, services: Services) -> None:
    rolling_with_evidence(client, services)
    build_controller(services).tick()
    body = client.get("/api/v1/flags/F/gates", headers=READ).get_json()
    assert body["arms"]["treatment"]["samples"] == 400
    assert body["arms"]["treatment"]["error_rate"] == 0.25
    assert body["arms"]["control"]["errors_by_type"] == {"Boom": 36}
    error_rate, latency = body["gates"]
    assert (error_rate["metric"], error_rate["verdict"]) == ("error_rate", "fail")
    assert error_rate["readings"]["stage"]["samples"] == 400
    assert latency["verdict"] == "pass" and latency["window"] == 60
    assert body["status"]["decision"] == "killed"


def test_gates_of_unknown_flag_is_404(client: FlaskClient) -> None:
    response = client.get("/api/v1/flags/NOPE/gates", headers=READ)
    assert response.status_code == 404 and error_of(response)["code"] == "flag_not_found"


def test_gates_need_a_token(client: FlaskClient) -> None:
    assert client.get("/api/v1/flags/F/gates").status_code == 401


def test_metrics_has_arm_and_controller_figures(client: FlaskClient, services: Services) -> None:
    rolling_with_evidence(client, services)
    controller = build_controller(services)
    assert controller.lead()
    controller.tick()
    text = client.get("/metrics").get_data(as_text=True)
    assert 'rollout_arm_samples{arm="treatment",flag="F"} 400.0' in text
    assert 'rollout_arm_errors{arm="control",flag="F"} 36.0' in text
    assert 'rollout_arm_p95_seconds{arm="treatment",flag="F"}' in text
    assert "rollout_controller_ticks_total 1.0" in text
    assert "rollout_controller_kills_total 1.0" in text
    assert "rollout_controller_leader_alive 1.0" in text
    assert "rollout_sdk_dropped_samples_total 0.0" in text
    assert "rollout_sdk_dropped_values_total 0.0" in text


def test_value_gates_through_the_api(client: FlaskClient) -> None:
    gate = {"metric": "value:improvement_delta", "warn": -0.02, "critical": -0.05}
    made = create(client, gates=[gate])
    assert made["gates"][0]["direction"] == "higher_is_better"
    assert made["gates"][0]["relative"] is True and made["baseline_values"] == {}
    wrong = client.post(
        "/api/v1/flags",
        json={"key": "G", "gates": [{**gate, "warn": -0.05, "critical": -0.02}]},
        headers=ADMIN,
    )
    assert wrong.status_code == 422
    assert error_of(wrong)["field"] == "gates[0].critical"
    assert "value:improvement_delta" in error_of(wrong)["message"]
    for bad in ({**gate, "metric": "value:Bad"}, {**gate, "direction": "up"}):
        response = client.post("/api/v1/flags", json={"key": "H", "gates": [bad]}, headers=ADMIN)
        assert response.status_code == 422, response.get_json()
    many = [{**gate, "metric": f"value:v{i}"} for i in range(21)]
    response = client.post("/api/v1/flags", json={"key": "H", "gates": many}, headers=ADMIN)
    assert response.status_code == 422 and "at most 20" in error_of(response)["message"]


def test_a_sample_ratio_mismatch_holds_and_shows_in_gates_and_metrics(
    client: FlaskClient, services: Services
) -> None:
    create(client, gates=GATES[:1], stages=[{"percent": 10}, {"percent": 100}], auto_advance=True)
    assert client.post("/api/v1/flags/F/advance", headers=ADMIN).status_code == 200
    flag = services.flags.get("F")
    batch = Batch()
    # Only the new path is instrumented: every healthy sample lands in the treatment.
    batch.tally("F", flag.stage_started_at or 0, "treatment").samples = 400
    services.gates.metrics.flush(batch, now=services.clock(), process="test")
    build_controller(services).tick()
    body = client.get("/api/v1/flags/F/gates", headers=READ).get_json()
    srm = body["srm"]
    assert (srm["verdict"], srm["expected"]) == ("mismatch", 0.1)
    assert srm["observed"] == {"exposures": None, "samples": 1.0}
    assert srm["statistic"]["samples"] > 7.6 and srm["statistic"]["exposures"] == 0.0
    assert body["status"]["decision"] == "sample_ratio_mismatch"
    assert "expected 10%" in body["status"]["why"]
    assert services.flags.get("F").percent_bp == 1000  # held: never advanced
    text = client.get("/metrics").get_data(as_text=True)
    assert 'rollout_sample_ratio_mismatch{flag="F"} 1.0' in text
    shown = client.get("/api/v1/flags/F", headers=READ).get_json()
    assert shown["srm"] == "hold"
