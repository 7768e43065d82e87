"""Targeting rules over the API: POST/PATCH/GET, refusals naming the field, evaluate attrs."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from rollout.core.evaluation import Reason
from tests.api.conftest import ADMIN, READ, create, error_of

TESTERS = {"attribute": "email", "op": "ends_with", "values": ["@example.com"], "serve": "on"}
OLD_APP = {"attribute": "app_version", "op": "semver_lt", "values": ["2.0.0"], "serve": "off"}


def evaluate(client: FlaskClient, query: str) -> Any:
    response = client.get(f"/api/v1/flags/F/evaluate?{query}", headers=READ)
    return response


def test_rules_are_set_shown_and_changed(client: FlaskClient) -> None:
    body = create(client, rules=[TESTERS])
    assert body["rules"] == [TESTERS]
    assert client.get("/api/v1/flags/F", headers=READ).get_json()["rules"] == [TESTERS]
    response = client.patch("/api/v1/flags/F", json={"rules": [OLD_APP, TESTERS]}, headers=ADMIN)
    assert response.status_code == 200
    assert response.get_json()["rules"] == [OLD_APP, TESTERS]
    assert (
        client.patch("/api/v1/flags/F", json={"rules": []}, headers=ADMIN).get_json()["rules"] == []
    )


def test_evaluate_takes_attributes_as_strings(client: FlaskClient) -> None:
    age = {"attribute": "age", "op": "gte", "values": [18], "serve": "on"}
    create(client, rules=[OLD_APP, TESTERS, age])
    answer = evaluate(client, "user=u1&attr.email=qa@example.com").get_json()
    assert (answer["enabled"], answer["reason"]) == (True, str(Reason.RULE))
    assert isinstance(answer["bucket"], int)
    old = evaluate(client, "user=u1&attr.email=qa@example.com&attr.app_version=1.9").get_json()
    assert (old["enabled"], old["reason"]) == (False, "rule")  # the first matching rule wins
    assert evaluate(client, "user=u1&attr.email=qa@else.org").get_json()["reason"] == (
        "out_of_cohort"
    )
    # Query values are strings: "42" is no number, so a comparison never matches it.
    assert evaluate(client, "user=u1&attr.age=42").get_json()["reason"] == "out_of_cohort"
    assert evaluate(client, "user=u1&other=1").get_json()["reason"] == "out_of_cohort"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("user=u1&attr.1bad=x", "attr.1bad"),
        ("user=u1&attr.=x", "attr."),
        ("user=u1&attr.a%20b=x", "attr.a b"),
        ("user=u1&attr.email=" + "x" * 4097, "attr.email"),
    ],
)
def test_evaluate_refuses_bad_attributes_naming_them(
    client: FlaskClient, query: str, field: str
) -> None:
    create(client, rules=[TESTERS])
    response = evaluate(client, query)
    assert response.status_code == 422
    assert error_of(response)["field"] == field


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ([TESTERS, {**TESTERS, "op": "regex"}], "rules[1].op"),
        ([{**TESTERS, "attribute": "9lives"}], "rules[0].attribute"),
        ([{**TESTERS, "serve": "maybe"}], "rules[0].serve"),
        ([{**TESTERS, "values": []}], "rules[0].values"),
        ([{**TESTERS, "values": [None]}], "rules[0].values[0]"),
        ([{**TESTERS, "values": [5]}], "rules[0].values[0]"),
        ([{**OLD_APP, "values": ["2.x"]}], "rules[0].values[0]"),
        ([{**OLD_APP, "values": ["1", "2"]}], "rules[0].values"),
        ([{**TESTERS, "extra": True}], "rules[0].extra"),
        ([TESTERS] * 51, "rules"),
        ("all", "rules"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(
    client: FlaskClient, rules: Any, field: str
) -> None:
    response = client.post("/api/v1/flags", json={"key": "F", "rules": rules}, headers=ADMIN)
    assert response.status_code == 422, response.get_json()
    assert error_of(response)["field"] == field
    create(client)
    response = client.patch("/api/v1/flags/F", json={"rules": rules}, headers=ADMIN)
    assert response.status_code == 422
    assert error_of(response)["field"] == field


def test_the_document_states_the_rule_shapes(client: FlaskClient) -> None:
    doc = client.get("/openapi.json").get_json()
    text = str(doc)
    for op in ("in", "not_in", "starts_with", "semver_gte", "lte"):
        assert f"'{op}'" in text
    evaluate_op = doc["paths"]["/api/v1/flags/{key}/evaluate"]["get"]
    assert "attr.NAME" in evaluate_op["description"]
