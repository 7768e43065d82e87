"""Bearer tokens: 401 without a known token, 403 for a read token on a write."""

from __future__ import annotations

import logging

import pytest
from flask.testing import FlaskClient

from rollout.api.auth import TokenChecker
from rollout.core.errors import AuthError
from rollout.services.container import Services
from tests.api.conftest import (
    ADMIN,
    ADMIN_TOKEN,
    PLAN,
    READ,
    READ_TOKEN,
    SECOND_ADMIN_TOKEN,
    audit_size,
    create,
    error_of,
)

# Every write route with a body it would accept from an admin.
WRITES = [
    ("POST", "/api/v1/flags", {"key": "G"}),
    ("PATCH", "/api/v1/flags/F", {"description": "x"}),
    ("DELETE", "/api/v1/flags/F", {}),
    ("PUT", "/api/v1/flags/F/percentage", {"percent": 5}),
    ("POST", "/api/v1/flags/F/advance", {}),
    ("POST", "/api/v1/flags/F/rollback", {}),
    ("POST", "/api/v1/flags/F/pause", {}),
    ("POST", "/api/v1/flags/F/resume", {}),
    ("POST", "/api/v1/flags/F/kill", {"reason": "r"}),
    ("POST", "/api/v1/flags/F/revive", {}),
    ("POST", "/api/v1/kill-all", {"reason": "r"}),
    ("POST", "/api/v1/snapshots", {}),
    ("POST", "/api/v1/snapshots/S/restore", {}),
]
READS = [
    "/api/v1/flags",
    "/api/v1/flags/F",
    "/api/v1/flags/F/evaluate?user=u",
    "/api/v1/audit",
    "/api/v1/snapshots",
]
BAD_HEADERS = [
    {},
    {"Authorization": ""},
    {"Authorization": f"Basic {ADMIN_TOKEN}"},
    {"Authorization": f"Token {ADMIN_TOKEN}"},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer not-a-configured-token"},
    {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
    {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"},
    {"Authorization": "Bearer ünïcødé-token"},
    {"Authorization": "alice"},
]


def test_read_token_on_every_write_route_is_403_and_writes_nothing(
    client: FlaskClient, services: Services
) -> None:
    create(client, **PLAN)
    before = audit_size(services)
    for method, path, body in WRITES:
        response = client.open(path, method=method, json=body, headers=READ)
        assert response.status_code == 403, (method, path)
        error = error_of(response)
        assert error["code"] == "forbidden" and "bob" in error["message"]
    assert audit_size(services) == before
    assert services.flags.get("F").description == ""


def test_missing_or_unknown_token_is_401_everywhere(client: FlaskClient) -> None:
    create(client)
    routes = [(m, p, b) for m, p, b in WRITES] + [("GET", p, None) for p in READS]
    for headers in BAD_HEADERS:
        for method, path, body in routes:
            response = client.open(path, method=method, json=body, headers=headers)
            assert response.status_code == 401, (headers, method, path)
            assert error_of(response)["code"] == "unauthorized"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_read_token_reads_and_admin_tokens_write_as_their_name(
    client: FlaskClient, services: Services
) -> None:
    create(client)
    for path in READS:  # F exists, so every read has an answer
        assert client.get(path, headers=READ).status_code == 200, path
    carol = {"Authorization": f"Bearer {SECOND_ADMIN_TOKEN}"}
    client.patch("/api/v1/flags/F", json={"description": "x"}, headers=carol)
    assert services.flags.audit("F")[0]["actor"] == "carol"
    # The scheme is case-insensitive (RFC 7235); extra spaces around the token are tolerated.
    lower = {"Authorization": f"bearer   {ADMIN_TOKEN} "}
    assert client.get("/api/v1/flags", headers=lower).status_code == 200


def test_tokens_are_never_echoed_or_logged(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "Bearer guessed-token-0123456789"
    bodies = [
        client.get("/api/v1/flags", headers={"Authorization": wrong}).get_data(as_text=True),
        client.post("/api/v1/flags", json={"key": "X"}, headers=READ).get_data(as_text=True),
        client.get("/api/v1/flags/NOPE", headers=ADMIN).get_data(as_text=True),
    ]
    for text in [*bodies, caplog.text]:
        for secret in (ADMIN_TOKEN, READ_TOKEN, "guessed-token-0123456789"):
            assert secret not in text


def test_checker_compares_every_token() -> None:
    checker = TokenChecker({"a" * 20: "admin"}, {"r" * 20: "reader", "a" * 20: "dup"})
    # The same token configured in both roles keeps the stronger one.
    principal = checker.identify("Bearer " + "a" * 20)
    assert principal.name == "admin" and principal.can_write
    assert not checker.identify("Bearer " + "r" * 20).can_write
    with pytest.raises(AuthError):
        checker.identify("Bearer " + "b" * 20)


def test_no_tokens_configured_refuses_everything() -> None:
    empty = TokenChecker({}, {})
    with pytest.raises(AuthError):
        empty.identify(f"Bearer {ADMIN_TOKEN}")
