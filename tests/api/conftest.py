"""Fixtures for the admin API: an app over the `services` fixture and token headers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from rollout.api.app import create_app
from rollout.services.container import Services
from rollout.storage.connection import client_for_url
from rollout.wiring import build_services
from tests.conftest import make_settings
from tests.support import FakeClock

ADMIN_TOKEN = "admin-token-0123456789abcdef"
SECOND_ADMIN_TOKEN = "admin2-token-0123456789abcdef"
READ_TOKEN = "read-token-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
TOKENS = {
    "admin_tokens": f"alice:{ADMIN_TOKEN},carol:{SECOND_ADMIN_TOKEN}",
    "read_tokens": f"bob:{READ_TOKEN}",
}
PLAN: dict[str, Any] = {
    "stages": [{"percent": 10, "bake": "1h"}, {"percent": 50}, {"percent": 100}]
}


def api_services(redis_client: Any, clock: FakeClock) -> Services:
    return build_services(make_settings(**TOKENS), redis_client=redis_client, clock=clock)


@pytest.fixture
def app(any_redis: Any, clock: FakeClock) -> Iterator[Flask]:
    """The app over fakeredis and over a real redis-server (the `any_redis` parameters)."""
    services = api_services(any_redis, clock)
    yield create_app(services)
    services.close()  # stops its channel-following thread, started by the first GET


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def services(app: Flask) -> Services:
    """The services behind `app` (overrides the root fixture so both are the same objects)."""
    return app.extensions["rollout"]  # type: ignore[no-any-return]


@pytest.fixture
def down_app(clock: FakeClock, closed_port: int) -> Iterator[Flask]:
    """An app whose Redis is a closed port: every storage call fails at once."""
    redis_client = client_for_url(f"redis://127.0.0.1:{closed_port}", socket_timeout=0.5)
    services = api_services(redis_client, clock)
    yield create_app(services)
    services.close()
    redis_client.close()  # the fixture's own client: close() leaves a caller's client open


def create(client: FlaskClient, key: str = "F", **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/flags", json={"key": key, **body}, headers=ADMIN)
    assert response.status_code == 201, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def audit_size(services: Services) -> int:
    return len(services.flags.audit(limit=10_000))


def error_of(response: Any) -> dict[str, Any]:
    """The error object of an answer, after checking the body has exactly our shape."""
    body = response.get_json()
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"]), body
    return body["error"]  # type: ignore[no-any-return]
