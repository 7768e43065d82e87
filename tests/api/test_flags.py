"""Flag resources: list, create, read (ETag), PATCH (If-Match, allowed fields), delete, percent."""

from __future__ import annotations

from flask.testing import FlaskClient

from rollout.services.container import Services
from tests.api.conftest import ADMIN, PLAN, READ, audit_size, create, error_of


def test_create_returns_the_flag_with_etag_location_and_audit_actor(
    client: FlaskClient, services: Services
) -> None:
    response = client.post(
        "/api/v1/flags",
        json={"key": "PROMPT_IMPROVER_ENABLED", "description": "d", "reason": "new", **PLAN},
        headers=ADMIN,
    )
    assert response.status_code == 201
    flag = response.get_json()
    assert flag["state"] == "draft" and flag["percent"] == 0 and flag["salt"] == flag["key"]
    assert [s["percent"] for s in flag["stages"]] == [10, 50, 100]
    assert flag["stages"][0]["bake"] == 3600  # durations come back as seconds
    assert response.headers["ETag"] == f'"{flag["version"]}"'
    assert response.headers["Location"] == "/api/v1/flags/PROMPT_IMPROVER_ENABLED"
    [entry] = services.flags.audit("PROMPT_IMPROVER_ENABLED")
    assert (entry["actor"], entry["action"], entry["reason"]) == ("alice", "create", "new")


def test_create_existing_is_409_and_writes_nothing(client: FlaskClient, services: Services) -> None:
    create(client)
    before = audit_size(services)
    response = client.post("/api/v1/flags", json={"key": "F"}, headers=ADMIN)
    assert response.status_code == 409
    assert error_of(response)["code"] == "flag_exists"
    assert audit_size(services) == before


def test_create_refuses_bad_fields_naming_them(client: FlaskClient, services: Services) -> None:
    cases = {
        "key": {"key": "9bad"},
        "stages[1].percent": {"key": "F", "stages": [{"percent": 10}, {"percent": 5}]},
        "stages[0].percent": {"key": "F", "stages": [{"percent": 10.001}]},
        "gates[0].metric": {"key": "F", "gates": [{"metric": "cpu", "warn": 1, "critical": 2}]},
        "auto_advance": {"key": "F", "auto_advance": "yes"},
        "state": {"key": "F", "state": "rolling"},
        "stages[0].bake": {"key": "F", "stages": [{"percent": 10, "bake": "soon"}]},
    }
    for field, body in cases.items():
        response = client.post("/api/v1/flags", json=body, headers=ADMIN)
        assert response.status_code == 422, (field, response.get_json())
        error = error_of(response)
        assert error["code"] == "validation_error"
        assert error["field"] == field and field in error["message"], error
    missing = client.post("/api/v1/flags", json={}, headers=ADMIN)
    assert missing.status_code == 422 and error_of(missing)["field"] == "key"
    assert audit_size(services) == 0
    assert client.get("/api/v1/flags", headers=ADMIN).get_json()["flags"] == []


def test_list_and_get(client: FlaskClient) -> None:
    create(client, "B")
    create(client, "A")
    listed = client.get("/api/v1/flags", headers=READ).get_json()
    assert [f["key"] for f in listed["flags"]] == ["A", "B"] and listed["problems"] == []
    response = client.get("/api/v1/flags/A", headers=READ)
    assert response.status_code == 200 and response.get_json()["key"] == "A"
    assert response.headers["ETag"] == '"1"'


def test_unknown_flag_is_404_and_bad_key_is_422(client: FlaskClient) -> None:
    for method, path in [
        ("GET", "/api/v1/flags/NOPE"),
        ("PATCH", "/api/v1/flags/NOPE"),
        ("DELETE", "/api/v1/flags/NOPE"),
        ("PUT", "/api/v1/flags/NOPE/percentage"),
        ("POST", "/api/v1/flags/NOPE/advance"),
        ("GET", "/api/v1/flags/NOPE/evaluate?user=u"),
    ]:
        body = {"percent": 5} if method == "PUT" else {}
        response = client.open(path, method=method, json=body, headers=ADMIN)
        assert response.status_code == 404, (method, path)
        assert error_of(response)["code"] == "flag_not_found"
    response = client.get("/api/v1/flags/9bad", headers=ADMIN)
    assert response.status_code == 422 and error_of(response)["field"] == "key"


def test_patch_changes_configuration_and_etag(client: FlaskClient, services: Services) -> None:
    create(client)
    response = client.patch(
        "/api/v1/flags/F",
        json={"description": "new", "allow": ["qa"], "reason": "testers"},
        headers={**ADMIN, "If-Match": '"1"'},
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["description"] == "new" and response.get_json()["allow"] == ["qa"]
    assert response.headers["ETag"] == '"2"'
    entry = services.flags.audit("F")[0]
    assert (entry["action"], entry["reason"], entry["actor"]) == ("update", "testers", "alice")


def test_patch_with_stale_if_match_is_412_and_writes_nothing(
    client: FlaskClient, services: Services
) -> None:
    create(client)
    etag = client.get("/api/v1/flags/F", headers=ADMIN).headers["ETag"]
    client.patch("/api/v1/flags/F", json={"description": "first"}, headers=ADMIN)
    before = audit_size(services)
    stale = client.patch(
        "/api/v1/flags/F", json={"description": "second"}, headers={**ADMIN, "If-Match": etag}
    )
    assert stale.status_code == 412
    assert error_of(stale)["code"] == "precondition_failed"
    assert audit_size(services) == before
    assert services.flags.get("F").description == "first"


def test_patch_if_match_forms(client: FlaskClient) -> None:
    create(client)
    for good in ('"1"', "*"):
        response = client.patch("/api/v1/flags/F", json={}, headers={**ADMIN, "If-Match": good})
        assert response.status_code == 200, good
    for garbage in ("abc", '"1', 'W/"1"', '"1", "2"', '"-1"'):
        response = client.patch(
            "/api/v1/flags/F", json={"description": "x"}, headers={**ADMIN, "If-Match": garbage}
        )
        assert response.status_code == 400, garbage
        assert error_of(response)["code"] == "malformed_request"
        assert "If-Match" in error_of(response)["message"]


def test_patch_refuses_moves_and_identity_fields(client: FlaskClient, services: Services) -> None:
    create(client, **PLAN)
    before = audit_size(services)
    for field, value in [
        ("state", "rolling"),
        ("percent", 50),
        ("stage", 1),
        ("salt", "other"),
        ("key", "G"),
        ("version", 9),
        ("kill", None),
    ]:
        response = client.patch("/api/v1/flags/F", json={field: value}, headers=ADMIN)
        assert response.status_code == 422, field
        error = error_of(response)
        assert error["field"] == field and field in error["message"]
    assert audit_size(services) == before
    flag = services.flags.get("F")
    assert (flag.state, flag.percent_bp, flag.salt) == ("draft", 0, "F")


def test_patch_refuses_removing_the_current_stage(client: FlaskClient, services: Services) -> None:
    """The rule is the service's (a refused move: 409); the API only passes it on."""
    create(client, **PLAN)
    client.post("/api/v1/flags/F/advance", headers=ADMIN)
    before = audit_size(services)
    response = client.patch("/api/v1/flags/F", json={"stages": [{"percent": 20}]}, headers=ADMIN)
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "invalid_transition" and "current stage" in error["message"]
    assert audit_size(services) == before


def test_set_percentage(client: FlaskClient, services: Services) -> None:
    create(client, **PLAN)
    response = client.put(
        "/api/v1/flags/F/percentage", json={"percent": 12.5, "reason": "manual"}, headers=ADMIN
    )
    assert response.status_code == 200
    flag = response.get_json()
    assert (flag["percent"], flag["state"], flag["stage"]) == (12.5, "rolling", 0)
    assert services.flags.audit("F")[0]["reason"] == "manual"


def test_percent_is_never_rounded(client: FlaskClient, services: Services) -> None:
    create(client)
    before = audit_size(services)
    for raw in ("12.555", "12.50000000000000001", "100.01", "-0.01", "1e-400", '"12.5"', "true"):
        response = client.put(
            "/api/v1/flags/F/percentage",
            data=f'{{"percent": {raw}}}',
            content_type="application/json",
            headers=ADMIN,
        )
        assert response.status_code == 422, (raw, response.get_json())
        assert error_of(response)["field"] == "percent"
    missing = client.put("/api/v1/flags/F/percentage", json={}, headers=ADMIN)
    assert missing.status_code == 422 and error_of(missing)["field"] == "percent"
    assert audit_size(services) == before
    assert services.flags.get("F").percent_bp == 0


def test_delete(client: FlaskClient, services: Services) -> None:
    create(client)
    response = client.delete("/api/v1/flags/F", json={"reason": "done"}, headers=ADMIN)
    assert response.status_code == 204 and response.data == b""
    assert client.get("/api/v1/flags/F", headers=ADMIN).status_code == 404
    entry = services.flags.audit("F")[0]
    assert (entry["action"], entry["reason"]) == ("delete", "done")
    assert client.delete("/api/v1/flags/F", headers=ADMIN).status_code == 404
