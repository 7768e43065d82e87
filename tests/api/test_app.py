"""The factory's contract, the metrics collector's extension point, and layering."""

from __future__ import annotations

import ast
import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import fakeredis
from flask.testing import FlaskClient
from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

import rollout.api
from rollout.api import metrics
from rollout.api.app import create_app
from rollout.api.http import MAX_BODY
from rollout.core.model import Flag
from rollout.services.container import Services
from rollout.wiring import build_services
from tests.api.conftest import ADMIN, ADMIN_TOKEN, READ, api_services, create, error_of
from tests.conftest import make_settings
from tests.support import FakeClock


def test_services_live_in_extensions_and_settings_default_to_theirs(clock: FakeClock) -> None:
    services = api_services(fakeredis.FakeRedis(decode_responses=True), clock)
    app = create_app(services=services)
    assert app.extensions["rollout"] is services
    assert app.test_client().get("/api/v1/flags", headers=ADMIN).status_code == 200


def test_explicit_settings_decide_the_tokens(clock: FakeClock) -> None:
    services = build_services(
        make_settings(), redis_client=fakeredis.FakeRedis(decode_responses=True), clock=clock
    )
    other = make_settings(read_tokens=f"ro:{ADMIN_TOKEN}")
    client = create_app(settings=other, services=services).test_client()
    assert client.get("/api/v1/flags", headers=ADMIN).status_code == 200
    assert client.post("/api/v1/flags", json={"key": "F"}, headers=ADMIN).status_code == 403


def test_head_and_options_count_as_reads(client: FlaskClient) -> None:
    create(client)
    assert client.head("/api/v1/flags/F", headers=READ).status_code == 200
    assert client.options("/api/v1/flags/F", headers=READ).status_code == 200


def test_a_body_of_exactly_64_kib_is_read_chunked_or_not(client: FlaskClient) -> None:
    create(client)
    prefix, suffix = '{"description": "', '"}'
    exact = (prefix + "x" * (MAX_BODY - len(prefix) - len(suffix)) + suffix).encode()
    assert len(exact) == MAX_BODY
    plain = client.patch(
        "/api/v1/flags/F", data=exact, content_type="application/json", headers=ADMIN
    )
    chunked = client.patch(
        "/api/v1/flags/F",
        input_stream=io.BytesIO(exact),
        content_type="application/json",
        headers={**ADMIN, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    for response in (plain, chunked):  # read, then refused for the description's own limit
        assert response.status_code == 422
        assert error_of(response)["field"] == "description"


def test_metrics_sources_extend_the_collector(clock: FakeClock) -> None:
    def arm_samples(services: Services, flags: Sequence[Flag]) -> Iterator[Metric]:
        family = GaugeMetricFamily("rollout_test_flags", "Flags seen.", labels=[])
        family.add_metric([], len(flags))
        yield family

    services = api_services(fakeredis.FakeRedis(decode_responses=True), clock)
    services.flags.create("F", actor="t")
    registry = metrics.build_registry(services, [*metrics.SOURCES, arm_samples])
    text = generate_latest(registry).decode()
    assert "rollout_test_flags 1.0" in text and 'rollout_flag_version{flag="F"} 1.0' in text


def test_no_module_of_the_api_imports_redis() -> None:
    for path in Path(rollout.api.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[Any] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n == "redis" or n.startswith("redis.") for n in names), path
