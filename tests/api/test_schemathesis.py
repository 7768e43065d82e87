"""Property-based run of schemathesis against /openapi.json, in process, bounded and seeded.

Every documented operation gets generated requests, both schema-valid (positive) and
schema-violating (negative), with an admin token. Each answer must be a non-5xx that the
document describes: a documented status, content type and body schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from rollout.api.app import create_app
from rollout.core.errors import FlagExists
from rollout.wiring import Services
from tests.api.conftest import ADMIN, PLAN, api_services
from tests.support import FakeClock

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Examples per operation; about 20 operations, so a few hundred cases in all.
BUDGET = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 6}
SEEDED_BUDGET = 6  # positive cases on the seeded flag and snapshot


@pytest.fixture
def fuzz_app(real_redis: Any, clock: FakeClock) -> Iterator[Flask]:
    services = api_services(real_redis, clock)
    yield create_app(services=services)
    services.reads.stop()  # its channel-following thread, started by the first read


def _seed(services: Services) -> str:
    """A flag F with stages and a saved snapshot, so fixed path parameters reach real data."""
    try:
        services.flags.create("F", actor="seed", **PLAN)
    except FlagExists:
        pass
    return services.snapshots.save()[0]


def _run(operation: Any, strategy: Any, examples: int, services: Services) -> None:
    @settings(
        max_examples=examples,
        derandomize=True,  # the same cases on every run
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case: Any) -> None:
        _seed(services)
        case.call_and_validate(headers=ADMIN, checks=CHECKS)

    check()


def test_api_conforms_to_its_openapi_document(fuzz_app: Flask) -> None:
    services: Services = fuzz_app.extensions["rollout"]
    snapshot_id = _seed(services)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 19
    for operation in operations:
        for mode, examples in BUDGET.items():
            try:
                _run(operation, operation.as_strategy(generation_mode=mode), examples, services)
            except Unsatisfiable:
                # Nothing to violate: an operation without parameters or body has no negatives.
                assert mode is GenerationMode.NEGATIVE, operation.label
        if "{" in operation.path:
            fixed = {"key": "F", "snapshot_id": snapshot_id}
            wanted = {name: fixed[name] for name in fixed if f"{{{name}}}" in operation.path}
            strategy = operation.as_strategy(path_parameters=wanted)
            _run(operation, strategy, SEEDED_BUDGET, services)
