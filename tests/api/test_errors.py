"""Every error answers {"error": {"code", "message"}} with its status; never a 500 for input."""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from flask.testing import FlaskClient

from rollout.core.defaults import MAX_LISTED_USER, MAX_SALT
from rollout.services.container import Services
from tests.api.conftest import ADMIN, PLAN, audit_size, create, error_of

JSON = "application/json"


def test_malformed_json_is_400_and_writes_nothing(client: FlaskClient, services: Services) -> None:
    create(client)
    before = audit_size(services)
    for raw in (
        "{",
        '{"percent": }',
        "{'percent': 5}",
        '{"percent": NaN}',
        '{"percent": Infinity}',
        b"\xff\xfe\x00garbage",
        "[" * 30_000 + "]" * 30_000,  # deeper than the parser recurses
        '{"description": "\\ud800"}',  # a lone surrogate: parses, but no store can encode it
        '{"percent": 1' + "0" * 5000 + "}",  # more digits than Python converts
    ):
        response = client.patch("/api/v1/flags/F", data=raw, content_type=JSON, headers=ADMIN)
        assert response.status_code == 400, (str(raw)[:40], response.get_json())
        assert error_of(response)["code"] == "malformed_request"
    assert audit_size(services) == before


def test_body_must_be_a_json_object(client: FlaskClient) -> None:
    create(client)
    for raw in ("[]", '"x"', "5", "null", "true"):
        response = client.patch("/api/v1/flags/F", data=raw, content_type=JSON, headers=ADMIN)
        assert response.status_code == 422, raw
        assert error_of(response)["field"] == "body"


def test_wrong_content_type_is_415(client: FlaskClient) -> None:
    create(client)
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        response = client.patch(
            "/api/v1/flags/F",
            data='{"description": "x"}',
            content_type=content_type,
            headers=ADMIN,
        )
        assert response.status_code == 415, content_type
        assert error_of(response)["code"] == "unsupported_media_type"
    # A JSON subtype is JSON; an empty body needs no content type at all.
    ok = client.patch(
        "/api/v1/flags/F", data="{}", content_type="application/merge-patch+json", headers=ADMIN
    )
    assert ok.status_code == 200
    assert client.post("/api/v1/flags/F/kill", data="", headers=ADMIN).status_code == 422


def test_body_over_64_kib_is_413(client: FlaskClient, services: Services) -> None:
    create(client)
    before = audit_size(services)
    big = '{"description": "' + "x" * (64 * 1024) + '"}'
    response = client.patch("/api/v1/flags/F", data=big, content_type=JSON, headers=ADMIN)
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"
    # Also on a route that never reads its body.
    assert client.get("/api/v1/flags", data=big, headers=ADMIN).status_code == 413
    assert audit_size(services) == before


def test_chunked_body_over_64_kib_is_413(client: FlaskClient, services: Services) -> None:
    """A body without Content-Length (chunked) is cut off while it is read."""
    import io

    create(client)
    before = audit_size(services)
    big = ('{"description": "' + "x" * (64 * 1024) + '"}').encode()
    response = client.patch(
        "/api/v1/flags/F",
        input_stream=io.BytesIO(big),
        content_type=JSON,
        headers={**ADMIN, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},  # what gunicorn sets for chunked
    )
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"
    assert audit_size(services) == before
    small = client.patch(
        "/api/v1/flags/F",
        input_stream=io.BytesIO(b'{"description": "chunked"}'),
        content_type=JSON,
        headers={**ADMIN, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert small.status_code == 200 and small.get_json()["description"] == "chunked"


def test_unknown_route_is_404_and_wrong_method_405(client: FlaskClient) -> None:
    for path in ("/nope", "/api/v1/nope", "/api/v1/flags/F/explode", "/api/v2/flags"):
        response = client.get(path, headers=ADMIN)
        assert response.status_code == 404, path
        assert error_of(response)["code"] == "not_found"
    for method, path in [
        ("DELETE", "/api/v1/kill-all"),
        ("PUT", "/api/v1/flags"),
        ("GET", "/api/v1/flags/F/kill"),
        ("POST", "/healthz"),
    ]:
        response = client.open(path, method=method, headers=ADMIN)
        assert response.status_code == 405, (method, path)
        assert error_of(response)["code"] == "method_not_allowed"
        assert response.headers["Allow"]


def test_redis_down_is_503_with_a_clear_message(down_app: Flask) -> None:
    client = down_app.test_client()
    for method, path, body in [
        ("GET", "/api/v1/flags", None),
        ("GET", "/api/v1/flags/F", None),
        ("POST", "/api/v1/flags", {"key": "F"}),
        ("PUT", "/api/v1/flags/F/percentage", {"percent": 5}),
        ("POST", "/api/v1/flags/F/kill", {"reason": "r"}),
        ("POST", "/api/v1/kill-all", {"reason": "r"}),
        ("GET", "/api/v1/audit", None),
        ("POST", "/api/v1/snapshots", {}),
        ("GET", "/readyz", None),
    ]:
        response = client.open(path, method=method, json=body, headers=ADMIN)
        assert response.status_code == 503, (method, path)
        error = error_of(response)
        assert error["code"] == "storage_unavailable"
        assert error["message"].startswith("storage unavailable")
    assert client.get("/healthz").status_code == 200  # alive, just not ready
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert "rollout_storage_up 0.0" in metrics.get_data(as_text=True)


def test_validation_comes_before_storage(down_app: Flask) -> None:
    """Bad input is refused as such even when Redis is down (and auth before both)."""
    client = down_app.test_client()
    response = client.put("/api/v1/flags/F/percentage", json={"percent": 1.234}, headers=ADMIN)
    assert response.status_code == 422
    assert client.get("/api/v1/flags").status_code == 401


def test_a_bug_is_500_without_details(
    app: Flask,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(key: str) -> None:
        raise RuntimeError("secret internals at /srv/x.py")

    monkeypatch.setattr(services.reads, "get", broken)
    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/api/v1/flags/F", headers=ADMIN)
    assert response.status_code == 500
    assert error_of(response)["code"] == "internal_error"
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "secret internals" not in text
    assert "secret internals" in caplog.text  # the operator still finds it in the log


def test_bad_input_writes_nothing(client: FlaskClient, services: Services) -> None:
    create(client, **PLAN)
    before = audit_size(services)
    flag_before = client.get("/api/v1/flags/F", headers=ADMIN).get_json()
    bad = [
        ("PATCH", "/api/v1/flags/F", {"stages": [{"percent": 50}, {"percent": 10}]}),
        ("PATCH", "/api/v1/flags/F", {"gates": [{"metric": "error_rate", "warn": 2}]}),
        ("PATCH", "/api/v1/flags/F", {"allow": "qa"}),
        ("PATCH", "/api/v1/flags/F", {"description": None}),
        ("PUT", "/api/v1/flags/F/percentage", {"percent": 100.5}),
        ("POST", "/api/v1/flags/F/advance", {"force": 1}),
        ("POST", "/api/v1/flags/F/pause", {"unknown": 1}),
        ("POST", "/api/v1/flags", {"key": "G", "salt": ""}),
        ("POST", "/api/v1/flags", {"key": "G", "salt": "s" * (MAX_SALT + 1)}),
        ("PATCH", "/api/v1/flags/F", {"allow": ["u" * (MAX_LISTED_USER + 1)]}),
        ("POST", "/api/v1/snapshots/x/restore", {"only": 5}),
    ]
    for method, path, body in bad:
        response = client.open(path, method=method, json=body, headers=ADMIN)
        assert response.status_code == 422, (method, path, body, response.get_json())
    assert audit_size(services) == before
    assert client.get("/api/v1/flags/F", headers=ADMIN).get_json() == flag_before
