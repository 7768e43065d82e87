"""Evaluate, audit, snapshots and the public operational routes."""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient

from rollout.core.bucketing import bucket
from rollout.core.defaults import MAX_LISTED_USER, MAX_SALT
from rollout.services.container import Services
from tests.api.conftest import ADMIN, PLAN, READ, create, error_of
from tests.support import store_malformed


def test_evaluate(client: FlaskClient) -> None:
    create(client, allow=["qa"], deny=["eve"], **PLAN)
    client.put("/api/v1/flags/F/percentage", json={"percent": 100}, headers=ADMIN)
    answers = {
        user: client.get(f"/api/v1/flags/F/evaluate?user={user}", headers=READ).get_json()
        for user in ("qa", "eve", "u1")
    }
    assert answers["qa"] == {"enabled": True, "reason": "allowed", "bucket": bucket("F", "qa")}
    assert answers["eve"]["enabled"] is False and answers["eve"]["reason"] == "denied"
    assert answers["u1"] == {"enabled": True, "reason": "in_cohort", "bucket": bucket("F", "u1")}
    for query in ("", "?user=", "?user=" + "x" * 1025):
        response = client.get(f"/api/v1/flags/F/evaluate{query}", headers=READ)
        assert response.status_code == 422 and error_of(response)["field"] == "user"
    unknown = client.get("/api/v1/flags/NOPE/evaluate?user=u1", headers=READ)
    assert unknown.status_code == 404


def test_audit(client: FlaskClient) -> None:
    create(client, "A", **PLAN)
    create(client, "B")
    client.post("/api/v1/flags/A/advance", json={"reason": "go"}, headers=ADMIN)
    entries = client.get("/api/v1/audit", headers=READ).get_json()["entries"]
    assert [(e["flag"], e["action"]) for e in entries] == [
        ("A", "advance"),
        ("B", "create"),
        ("A", "create"),
    ]
    assert entries[0]["reason"] == "go" and entries[0]["after"]["percent"] == 10
    one = client.get("/api/v1/audit?flag=A&limit=1", headers=READ).get_json()["entries"]
    assert [e["action"] for e in one] == ["advance"]
    for query, field in [("?limit=0", "limit"), ("?limit=x", "limit"), ("?flag=9", "flag")]:
        response = client.get(f"/api/v1/audit{query}", headers=READ)
        assert response.status_code == 422 and error_of(response)["field"] == field


def test_snapshot_save_get_list_and_restore(client: FlaskClient, services: Services) -> None:
    create(client, "A", **PLAN)
    create(client, "B")
    client.post("/api/v1/flags/A/advance", headers=ADMIN)
    saved = client.post("/api/v1/snapshots", headers=ADMIN)
    assert saved.status_code == 201
    snapshot_id = saved.get_json()["id"]
    assert saved.headers["Location"] == f"/api/v1/snapshots/{snapshot_id}"
    document = client.get(f"/api/v1/snapshots/{snapshot_id}", headers=READ).get_json()
    assert document == saved.get_json()["snapshot"]
    listed = client.get("/api/v1/snapshots", headers=READ).get_json()["snapshots"]
    assert [s["id"] for s in listed] == [snapshot_id]

    # The risky change: A is killed, B deleted, C created. Restore undoes all of it.
    client.post("/api/v1/flags/A/kill", json={"reason": "oops"}, headers=ADMIN)
    client.delete("/api/v1/flags/B", headers=ADMIN)
    create(client, "C")
    response = client.post(
        f"/api/v1/snapshots/{snapshot_id}/restore", json={"reason": "rollback"}, headers=ADMIN
    )
    assert response.status_code == 200
    assert response.get_json() == {
        "created": ["B"],
        "updated": ["A"],
        "deleted": ["C"],
        "unchanged": [],
    }
    now = {f["key"]: f for f in client.get("/api/v1/flags", headers=READ).get_json()["flags"]}
    before = {f["key"]: f for f in document["flags"]}
    assert set(now) == {"A", "B"}
    for key in now:  # every field back exactly; only the bookkeeping moved on
        for field in ("version", "updated_at"):
            now[key].pop(field), before[key].pop(field)
        assert now[key] == before[key]
    assert services.flags.audit("A")[0]["action"] == "restore"


def test_restore_only_one_flag(client: FlaskClient) -> None:
    create(client, "A")
    create(client, "B")
    snapshot_id = client.post("/api/v1/snapshots", headers=ADMIN).get_json()["id"]
    client.patch("/api/v1/flags/A", json={"description": "changed"}, headers=ADMIN)
    client.patch("/api/v1/flags/B", json={"description": "changed"}, headers=ADMIN)
    response = client.post(
        f"/api/v1/snapshots/{snapshot_id}/restore", json={"only": "A"}, headers=ADMIN
    )
    assert response.get_json()["updated"] == ["A"]
    assert client.get("/api/v1/flags/A", headers=READ).get_json()["description"] == ""
    assert client.get("/api/v1/flags/B", headers=READ).get_json()["description"] == "changed"
    not_in = client.post(
        f"/api/v1/snapshots/{snapshot_id}/restore", json={"only": "Z"}, headers=ADMIN
    )
    assert not_in.status_code == 422 and error_of(not_in)["field"] == "only"


def test_unknown_snapshot_is_404(client: FlaskClient) -> None:
    for method, path in [
        ("GET", "/api/v1/snapshots/nope"),
        ("POST", "/api/v1/snapshots/nope/restore"),
    ]:
        response = client.open(path, method=method, headers=ADMIN)
        assert response.status_code == 404
        assert error_of(response)["code"] == "snapshot_not_found"


def test_public_routes_need_no_token(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json() == {"status": "ready"}
    assert client.get("/metrics").status_code == 200
    document = client.get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    assert "/api/v1/flags/{key}/percentage" in document["paths"]
    assert "/api/v1/flags/{key}/gates" in document["paths"]


def test_openapi_documents_bodies_from_the_models(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    put = document["paths"]["/api/v1/flags/{key}/percentage"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/SetPercentBody"
    )
    assert schemas["SetPercentBody"]["required"] == ["percent"]
    assert set(put["responses"]) >= {"200", "401", "403", "404", "409", "422", "503"}
    assert put["security"] == [{"bearerAuth": []}]
    assert document["paths"]["/healthz"]["get"].get("security", []) == []
    create_flag = schemas["CreateFlag"]["properties"]
    assert create_flag["salt"]["anyOf"][0]["maxLength"] == MAX_SALT
    assert create_flag["allow"]["items"]["maxLength"] == MAX_LISTED_USER
    assert json.dumps(document)  # serialisable as is


def test_metrics_read_flags_from_redis_on_scrape(client: FlaskClient) -> None:
    create(client, "A", **PLAN)
    client.post("/api/v1/flags/A/advance", headers=ADMIN)
    text = client.get("/metrics").get_data(as_text=True)
    assert "rollout_storage_up 1.0" in text
    assert 'rollout_flag_percent{flag="A"} 10.0' in text
    assert 'rollout_flag_state{flag="A",state="rolling"} 1.0' in text
    assert 'rollout_flag_state{flag="A",state="draft"} 0.0' in text
    client.put("/api/v1/flags/A/percentage", json={"percent": 12.5}, headers=ADMIN)
    assert 'rollout_flag_percent{flag="A"} 12.5' in client.get("/metrics").get_data(as_text=True)


def test_a_malformed_stored_flag_is_reported_not_a_500(client: FlaskClient, any_redis: Any) -> None:
    create(client, "A")
    store_malformed(any_redis, "BAD", "{not json", version=3)
    listed = client.get("/api/v1/flags", headers=READ).get_json()
    assert [f["key"] for f in listed["flags"]] == ["A"]
    assert len(listed["problems"]) == 1 and "BAD" in listed["problems"][0]
    response = client.get("/api/v1/flags/BAD", headers=READ)
    assert response.status_code == 409 and error_of(response)["code"] == "malformed_flag"
    assert "rollout_flags_unreadable 1.0" in client.get("/metrics").get_data(as_text=True)
    assert client.delete("/api/v1/flags/BAD", headers=ADMIN).status_code == 204  # repairable
