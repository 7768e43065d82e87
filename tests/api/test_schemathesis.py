"""Property-based run of schemathesis against /openapi.json, in process, bounded and seeded.

Every documented operation gets generated requests, both schema-valid (positive) and
schema-violating (negative), with an admin token. Each answer must be a non-5xx that the
document describes: a documented status, content type and body schema.

Positive requests must also be accepted (``positive_data_acceptance``): the document states
every constraint the API enforces that a schema can express. The only refusals allowed are
the rules no schema can state, listed in ``BEYOND_THE_SCHEMA`` (and in the README).
"""

from __future__ import annotations

import re
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
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import Failure

from rollout.api.app import create_app
from rollout.core.errors import FlagExists
from rollout.services.container import Services
from tests.api.conftest import ADMIN, PLAN, api_services
from tests.support import FakeClock

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Refusals of schema-valid requests that only cross-field logic, or the stored state, decides:
# (operation, status, field pattern, message fragment). Anything else is a document gap.
BEYOND_THE_SCHEMA = [
    # Each stage's percent above the one before: a relation between two items.
    ("POST /api/v1/flags", 422, r"stages\[\d+\]\.percent", "stages must increase"),
    ("PATCH /api/v1/flags/{key}", 422, r"stages\[\d+\]\.percent", "stages must increase"),
    # A gate's critical at or above its warn: a relation between two fields.
    ("POST /api/v1/flags", 422, r"gates\[\d+\]\.critical", "must be at or above warn"),
    ("PATCH /api/v1/flags/{key}", 422, r"gates\[\d+\]\.critical", "must be at or above warn"),
    # A business value's critical past its warn in the worse direction: two fields and the
    # direction (a third, or its default).
    ("POST /api/v1/flags", 422, r"gates\[\d+\]\.critical", "must be at or below warn"),
    ("PATCH /api/v1/flags/{key}", 422, r"gates\[\d+\]\.critical", "must be at or below warn"),
    # At most 20 value:NAME gates: a count of items matching a pattern.
    ("POST /api/v1/flags", 422, r"gates\[\d+\]\.metric", "value: gates"),
    ("PATCH /api/v1/flags/{key}", 422, r"gates\[\d+\]\.metric", "value: gates"),
    # One gate per metric: uniqueness of one field across items.
    ("POST /api/v1/flags", 422, r"gates\[\d+\]\.metric", "appears twice"),
    ("PATCH /api/v1/flags/{key}", 422, r"gates\[\d+\]\.metric", "appears twice"),
    # since not after until: two parameters.
    ("GET /api/v1/flags/{key}/metrics", 422, r"since", "is after until"),
    # At most 2,000 steps over [since, until], and steps finer than 5m only while the
    # 10-second windows are kept: the step against the range, and against the clock.
    ("GET /api/v1/flags/{key}/metrics", 422, r"step", "steps over this range"),
    ("GET /api/v1/flags/{key}/metrics", 422, r"step", "come from the 10-second windows"),
    # State, not shape: an If-Match naming another version, a flag the snapshot lacks.
    ("PATCH /api/v1/flags/{key}", 412, r"", "is at version"),
    ("POST /api/v1/snapshots/{snapshot_id}/restore", 422, r"only", "is not in the snapshot"),
]


def _beyond_the_schema(case: Any, response: Any) -> bool:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    field, message = error.get("field") or "", error.get("message") or ""
    return any(
        label == case.operation.label
        and status == response.status_code
        and re.fullmatch(pattern, field)
        and fragment in message
        for label, status, pattern, fragment in BEYOND_THE_SCHEMA
    )


def positive_data_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis's ``positive_data_acceptance``, allowing only ``BEYOND_THE_SCHEMA``."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except Failure:
        if _beyond_the_schema(case, response):
            return None
        raise


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


def _run(operation: Any, strategy: Any, examples: int, services: Services, positive: bool) -> None:
    checks = [*CHECKS, positive_data_accepted] if positive else CHECKS

    @settings(
        max_examples=examples,
        derandomize=True,  # the same cases on every run
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case: Any) -> None:
        _seed(services)
        case.call_and_validate(headers=ADMIN, checks=checks)

    check()


# Routes that are not JSON operations: the dashboard's page and files, Flask's static folder,
# and the document itself.
NOT_OPERATIONS = re.compile(r"dashboard\..*|static|meta\.openapi")


def served_operations(app: Flask) -> set[str]:
    """Every operation the app routes, labelled as schemathesis labels the document's."""
    found = set()
    for rule in app.url_map.iter_rules():
        if NOT_OPERATIONS.fullmatch(rule.endpoint):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        found |= {
            f"{method} {path}" for method in rule.methods or () if method not in {"HEAD", "OPTIONS"}
        }
    return found


def test_api_conforms_to_its_openapi_document(fuzz_app: Flask) -> None:
    services: Services = fuzz_app.extensions["rollout"]
    snapshot_id = _seed(services)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    labels = [operation.label for operation in operations]
    assert sorted(labels) == sorted(set(labels)) == sorted(served_operations(fuzz_app))
    for operation in operations:
        for mode, examples in BUDGET.items():
            try:
                strategy = operation.as_strategy(generation_mode=mode)
                positive = mode is GenerationMode.POSITIVE
                _run(operation, strategy, examples, services, positive)
            except Unsatisfiable:
                # Nothing to violate: an operation without parameters or body has no negatives.
                assert mode is GenerationMode.NEGATIVE, operation.label
        if "{" in operation.path:
            fixed = {"key": "F", "snapshot_id": snapshot_id}
            wanted = {name: fixed[name] for name in fixed if f"{{{name}}}" in operation.path}
            strategy = operation.as_strategy(
                generation_mode=GenerationMode.POSITIVE, path_parameters=wanted
            )
            _run(operation, strategy, SEEDED_BUDGET, services, True)
