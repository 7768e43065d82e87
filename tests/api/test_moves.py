"""Lifecycle moves and emergency stops over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from rollout.api.app import create_app
from rollout.services.container import Services
from rollout.storage.redis_process import RedisProcess
from tests.api.conftest import ADMIN, PLAN, api_services, audit_size, create, error_of
from tests.evidence import ERROR_GATE, flush_failing_evidence
from tests.support import FakeClock


def move(client: FlaskClient, name: str, key: str = "F", **body: object) -> dict[str, Any]:
    response = client.post(f"/api/v1/flags/{key}/{name}", json=body, headers=ADMIN)
    assert response.status_code == 200, (name, response.get_json())
    assert response.headers["ETag"] == f'"{response.get_json()["version"]}"'
    return response.get_json()  # type: ignore[no-any-return]


def test_the_whole_lifecycle(client: FlaskClient, services: Services) -> None:
    create(client, **PLAN)
    assert move(client, "advance")["percent"] == 10
    assert move(client, "advance", reason="looks good")["percent"] == 50
    assert move(client, "rollback")["percent"] == 10
    assert move(client, "pause")["state"] == "paused"
    assert move(client, "resume")["state"] == "rolling"
    killed = move(client, "kill", reason="error spike")
    assert killed["state"] == "killed" and killed["percent"] == 0
    assert killed["kill"]["by"] == "alice" and killed["kill"]["reason"] == "error spike"
    revived = move(client, "revive")
    assert (revived["state"], revived["percent"], revived["stage"]) == ("rolling", 10, 0)
    actions = [e["action"] for e in services.flags.audit("F")]
    assert actions == [
        "revive",
        "kill",
        "resume",
        "pause",
        "rollback",
        "advance",
        "advance",
        "create",
    ]
    assert services.flags.audit("F")[-3]["reason"] == "looks good"


def test_kill_is_idempotent_and_writes_nothing_the_second_time(
    client: FlaskClient, services: Services
) -> None:
    create(client, **PLAN)
    move(client, "advance")
    first = move(client, "kill", reason="errors")
    before = audit_size(services)
    second = move(client, "kill", reason="errors again")
    assert second == first
    assert audit_size(services) == before


def test_kill_needs_a_reason(client: FlaskClient, services: Services) -> None:
    create(client, **PLAN)
    before = audit_size(services)
    for body in ({}, {"reason": ""}, {"reason": "   "}, {"reason": 5}):
        response = client.post("/api/v1/flags/F/kill", json=body, headers=ADMIN)
        assert response.status_code == 422, body
        assert error_of(response)["field"] == "reason"
    assert audit_size(services) == before


def test_illegal_moves_are_409_and_write_nothing(client: FlaskClient, services: Services) -> None:
    create(client)  # no stages
    before = audit_size(services)
    for name in ("advance", "rollback", "pause", "resume", "revive"):
        response = client.post(f"/api/v1/flags/F/{name}", headers=ADMIN)
        assert response.status_code == 409, name
        assert error_of(response)["code"] == "invalid_transition"
    move(client, "kill", reason="stop")
    response = client.put("/api/v1/flags/F/percentage", json={"percent": 5}, headers=ADMIN)
    assert response.status_code == 409
    assert audit_size(services) == before + 1


@pytest.fixture
def real_client(real_redis: Any, clock: FakeClock) -> Iterator[tuple[FlaskClient, Services]]:
    """The app over the real redis-server only: the SDK flushes evidence into the same one."""
    services = api_services(real_redis, clock)
    yield create_app(services=services).test_client(), services
    services.reads.stop()


def test_advance_refused_while_a_gate_fails_unless_forced(
    real_client: tuple[FlaskClient, Services],
    redis_server_flushed: RedisProcess,
    clock: FakeClock,
) -> None:
    client, services = real_client
    create(client, gates=[ERROR_GATE], **PLAN)
    move(client, "advance")
    flush_failing_evidence(redis_server_flushed.url, services.flags.get("F"), clock)
    before = audit_size(services)
    refused = client.post("/api/v1/flags/F/advance", json={}, headers=ADMIN)
    assert refused.status_code == 409 and error_of(refused)["code"] == "gate_failing"
    assert "error_rate" in error_of(refused)["message"] and audit_size(services) == before
    assert move(client, "advance", force=True, reason="known noise")["percent"] == 50
    bad_force = client.post("/api/v1/flags/F/advance", json={"force": "yes"}, headers=ADMIN)
    assert bad_force.status_code == 422 and error_of(bad_force)["field"] == "force"


def test_kill_all_kills_rolling_and_paused_only(client: FlaskClient, services: Services) -> None:
    for key in ("A", "B", "C"):
        create(client, key, **PLAN)
    move(client, "advance", "A")
    move(client, "advance", "B")
    move(client, "pause", "B")
    response = client.post("/api/v1/kill-all", json={"reason": "bad day"}, headers=ADMIN)
    assert response.status_code == 200
    assert sorted(f["key"] for f in response.get_json()["killed"]) == ["A", "B"]
    states = {f.key: str(f.state) for f in services.flags.list_flags()}
    assert states == {"A": "killed", "B": "killed", "C": "draft"}
    missing = client.post("/api/v1/kill-all", json={}, headers=ADMIN)
    assert missing.status_code == 422 and error_of(missing)["field"] == "reason"
