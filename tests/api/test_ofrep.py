"""OFREP on the API, in process against a real Redis: answers, every error body, auth, CORS."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from rollout.api.app import create_app
from rollout.core.bucketing import bucket
from rollout.services.container import Services
from rollout.wiring import build_services
from tests.api.conftest import ADMIN, ADMIN_TOKEN, READ, READ_TOKEN, TOKENS
from tests.conftest import make_settings
from tests.support import FakeClock

ORIGIN = "https://app.example.com"
ONE = "/ofrep/v1/evaluate/flags/"
BULK = "/ofrep/v1/evaluate/flags"
FAILURE_KEYS = {"key", "errorCode", "errorDetails"}
BULK_FAILURE_KEYS = {"errorCode", "errorDetails"}


@pytest.fixture
def ofrep_app(real_redis: Any, clock: FakeClock) -> Iterator[Flask]:
    settings = make_settings(**TOKENS, cors_origins=ORIGIN)
    services = build_services(settings, redis_client=real_redis, clock=clock)
    yield create_app(services=services)
    services.reads.stop()


@pytest.fixture
def web(ofrep_app: Flask) -> FlaskClient:
    return ofrep_app.test_client()


@pytest.fixture
def flags(ofrep_app: Flask) -> Services:
    return ofrep_app.extensions["rollout"]  # type: ignore[no-any-return]


def post(web: FlaskClient, path: str, body: Any = None, headers: Any = None, **kw: Any) -> Any:
    data = kw.pop("data", json.dumps(body) if body is not None else b"")
    return web.post(path, data=data, headers=READ if headers is None else headers, **kw)


def context(user: str | None = None, **attributes: Any) -> dict[str, Any]:
    ctx: dict[str, Any] = dict(attributes)
    if user is not None:
        ctx["targetingKey"] = user
    return {"context": ctx}


def failure(response: Any, status: int, code: str, key: str | None = "F") -> str:
    """The errorDetails of an OFREP error, after checking status, exact shape and code."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == (FAILURE_KEYS if key is not None else BULK_FAILURE_KEYS), body
    assert body["errorCode"] == code
    if key is not None:
        assert body["key"] == key
    assert isinstance(body["errorDetails"], str) and body["errorDetails"]
    return body["errorDetails"]  # type: ignore[no-any-return]


def test_single_flag_answers_are_the_evaluation_of_each_user(
    web: FlaskClient, flags: Services
) -> None:
    flags.flags.create("F", actor="t", allow=["qa-alice"], deny=["qa-bob"])
    flag = flags.flags.set_percent("F", 25, actor="t")
    for i in range(300):
        user = f"user-{i}"
        response = post(web, ONE + "F", context(user))
        assert response.status_code == 200
        enabled = bucket("F", user) < 2500
        assert response.get_json() == {
            "key": "F",
            "value": enabled,
            "variant": "on" if enabled else "off",
            "reason": "SPLIT",
            "metadata": {"state": "rolling", "percent": 25, "version": flag.version},
        }
    for user, value in (("qa-alice", True), ("qa-bob", False)):
        body = post(web, ONE + "F", context(user)).get_json()
        assert (body["value"], body["reason"]) == (value, "TARGETING_MATCH")
    flags.flags.kill("F", reason="bad", actor="t")
    body = post(web, ONE + "F", context("qa-alice")).get_json()
    assert (body["value"], body["variant"], body["reason"]) == (False, "off", "DISABLED")
    assert body["metadata"]["state"] == "killed"


RULE = {"attribute": "email", "op": "ends_with", "values": ["@example.com"], "serve": "on"}


def test_context_attributes_feed_the_rules(
    web: FlaskClient, flags: Services, caplog: pytest.LogCaptureFixture
) -> None:
    flags.flags.create("RULED", actor="t", rules=[RULE])
    flags.flags.set_percent("RULED", 50, actor="t")
    for body in (context("u", email="qa@example.com"), context(None, email="qa@example.com")):
        answer = post(web, ONE + "RULED", body).get_json()
        assert (answer["value"], answer["reason"]) == (True, "TARGETING_MATCH")
    entry = post(web, BULK, context(None, email="qa@example.com")).get_json()["flags"][0]
    assert (entry["value"], entry["reason"]) == (True, "TARGETING_MATCH")
    for value in (["qa@example.com"], {"a": 1}):
        answer = post(web, ONE + "RULED", context("u", email=value)).get_json()
        assert answer["reason"] == "SPLIT"  # not a string: the rule does not match
    logged = [r for r in caplog.records if "context attribute 'email'" in r.getMessage()]
    assert len(logged) == 1  # once per flag and attribute, not per request


def test_unknown_flag_is_404_flag_not_found_without_touching_redis(
    web: FlaskClient, flags: Services, real_redis: Any
) -> None:
    flags.flags.create("F", actor="t")
    assert post(web, ONE + "F", context("u")).status_code == 200  # the cache is synced
    real_redis.config_resetstat()
    for _ in range(20):
        failure(post(web, ONE + "NOPE", context("u")), 404, "FLAG_NOT_FOUND", key="NOPE")
    # Only this INFO call itself: no request went to Redis.
    assert real_redis.info("stats")["total_commands_processed"] <= 1


def test_a_targeting_key_is_needed_only_on_a_split_percent(
    web: FlaskClient, flags: Services
) -> None:
    for key, percent in (("F", 50), ("ALL", 100), ("NONE", 0)):
        flags.flags.create(key, actor="t")
        if percent:
            flags.flags.set_percent(key, percent, actor="t")
    for body in (None, {}, {"context": {}}, context(""), context(None, plan="team")):
        failure(post(web, ONE + "F", body), 400, "TARGETING_KEY_MISSING")
        assert post(web, ONE + "ALL", body).get_json()["value"] is True
        assert post(web, ONE + "NONE", body).get_json()["value"] is False


def test_bodies_are_json_whatever_the_content_type(web: FlaskClient, flags: Services) -> None:
    flags.flags.create("F", actor="t")
    raw = json.dumps(context("u"))
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        assert post(web, ONE + "F", data=raw, content_type=content_type).status_code == 200
    for raw in ("{", "[1]", '"x"', "null", '{"context": NaN}', "[" * 30_000, b"\xff\xfe"):
        failure(post(web, ONE + "F", data=raw), 400, "PARSE_ERROR")
        failure(post(web, BULK, data=raw), 400, "PARSE_ERROR", key=None)


def test_an_unusable_context_is_invalid_context(web: FlaskClient, flags: Services) -> None:
    flags.flags.create("F", actor="t")
    for body in (
        {"context": "u"},
        {"context": [1]},
        {"context": {"targetingKey": 5}},
        {"context": {"targetingKey": ["u"]}},
        context("x" * 1025),
    ):
        failure(post(web, ONE + "F", body), 400, "INVALID_CONTEXT")
        failure(post(web, BULK, body), 400, "INVALID_CONTEXT", key=None)
    lone_surrogate = '{"context": {"targetingKey": "\\ud800"}}'
    failure(post(web, ONE + "F", data=lone_surrogate), 400, "INVALID_CONTEXT")
    assert post(web, ONE + "F", context("x" * 1024)).status_code == 200


def test_auth_bearer_or_api_key_401_without_403_for_unknown(
    web: FlaskClient, flags: Services
) -> None:
    flags.flags.create("F", actor="t")
    for headers in (
        READ,
        ADMIN,
        {"X-API-Key": READ_TOKEN},
        {"X-API-Key": ADMIN_TOKEN},
        {"Authorization": f"bearer {READ_TOKEN}"},
    ):
        assert post(web, ONE + "F", context("u"), headers).status_code == 200, headers
        assert post(web, BULK, context("u"), headers).status_code == 200, headers
    for headers in ({}, {"Authorization": f"Basic {READ_TOKEN}"}, {"X-API-Key": " "}):
        response = post(web, ONE + "F", context("u"), headers)
        failure(response, 401, "GENERAL")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        failure(post(web, BULK, context("u"), headers), 401, "GENERAL", key=None)
    for headers in (
        {"Authorization": "Bearer not-a-token-of-anyone-here"},
        {"X-API-Key": "not-a-token-of-anyone-here"},
    ):
        details = failure(post(web, ONE + "F", context("u"), headers), 403, "GENERAL")
        assert "not-a-token" not in details  # never echoed
        failure(post(web, BULK, context("u"), headers), 403, "GENERAL", key=None)


def test_large_bodies_wrong_methods_and_routes_answer_ofrep_shapes(
    web: FlaskClient, flags: Services
) -> None:
    flags.flags.create("F", actor="t")
    huge = context("u", blob="x" * (64 * 1024))
    failure(post(web, BULK, huge), 413, "GENERAL", key=None)
    failure(post(web, ONE + "F", huge), 413, "GENERAL")
    # Chunked: no Content-Length to refuse up front, so the read itself must stop.
    chunked = web.post(
        BULK,
        input_stream=io.BytesIO(json.dumps(huge).encode()),
        headers={**READ, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},  # as gunicorn says for chunked
    )
    failure(chunked, 413, "GENERAL", key=None)
    failure(web.get(BULK, headers=READ), 405, "GENERAL", key=None)
    failure(web.post("/ofrep/v1/nothing", headers=READ), 404, "GENERAL", key=None)
    # Outside /ofrep/ the API's own shape is unchanged.
    assert set(web.get("/api/v1/flags/NOPE", headers=READ).get_json()) == {"error"}


def test_bulk_evaluates_every_flag_with_a_strong_etag(web: FlaskClient, flags: Services) -> None:
    flags.flags.create("B", actor="t")
    flags.flags.set_percent("B", 50, actor="t")
    flags.flags.create("A", actor="t", allow=["qa-alice"])
    response = post(web, BULK, context("qa-alice"))
    assert response.status_code == 200
    entries = response.get_json()["flags"]
    assert [e["key"] for e in entries] == ["A", "B"]
    assert entries[0]["reason"] == "TARGETING_MATCH" and entries[0]["value"] is True
    expected_b = bucket("B", "qa-alice") < 5000
    assert entries[1]["value"] is expected_b and entries[1]["reason"] == "SPLIT"
    etag = response.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")

    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = post(web, BULK, context("qa-alice"), {**READ, "If-None-Match": header})
        assert again.status_code == 304, header
        assert again.get_data() == b"" and again.headers["ETag"] == etag
    stale = post(web, BULK, context("qa-alice"), {**READ, "If-None-Match": '"other"'})
    assert stale.status_code == 200 and stale.headers["ETag"] == etag
    # Another context, another body (qa-bob is not on A's allow list): another ETag.
    other_user = post(web, BULK, context("qa-bob"), {**READ, "If-None-Match": etag})
    assert other_user.status_code == 200 and other_user.headers["ETag"] != etag

    flags.flags.set_percent("B", 60, actor="t")
    changed = post(web, BULK, context("qa-alice"), {**READ, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag

    without_key = post(web, BULK, {}).get_json()["flags"]
    assert without_key[0]["value"] is False and without_key[0]["reason"] == "SPLIT"
    assert set(without_key[1]) == FAILURE_KEYS
    assert without_key[1]["errorCode"] == "TARGETING_KEY_MISSING"


def test_cors_for_the_configured_origins_only(web: FlaskClient, flags: Services) -> None:
    flags.flags.create("F", actor="t")
    preflight = web.options(
        BULK,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key, if-none-match, content-type",
        },
    )
    assert preflight.status_code == 204
    headers = preflight.headers
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in headers["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
    assert allowed == {"authorization", "x-api-key", "if-none-match", "content-type"}
    answer = post(web, BULK, context("u"), {**READ, "Origin": ORIGIN})
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert answer.headers["Access-Control-Expose-Headers"] == "ETag"
    assert "Origin" in answer.headers["Vary"]
    refused = post(web, ONE + "NOPE", context("u"), {**READ, "Origin": ORIGIN})
    assert refused.status_code == 404 and refused.headers["Access-Control-Allow-Origin"] == ORIGIN
    unauthenticated = post(web, ONE + "F", context("u"), {"Origin": ORIGIN})
    assert unauthenticated.headers["Access-Control-Allow-Origin"] == ORIGIN
    for origin in ("https://evil.example.com", "http://app.example.com"):
        other = post(web, BULK, context("u"), {**READ, "Origin": origin})
        assert other.status_code == 200 and "Access-Control-Allow-Origin" not in other.headers
        pre = web.options(BULK, headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
        assert "Access-Control-Allow-Origin" not in pre.headers


def test_no_cors_by_default(web: FlaskClient, real_redis: Any, clock: FakeClock) -> None:
    services = build_services(make_settings(**TOKENS), redis_client=real_redis, clock=clock)
    try:
        plain = create_app(services=services).test_client()
        response = post(plain, BULK, context("u"), {**READ, "Origin": ORIGIN})
        assert response.status_code == 200
        assert "Access-Control-Allow-Origin" not in response.headers
    finally:
        services.reads.stop()


def test_before_the_first_sync_the_answer_is_503(down_app: Flask) -> None:
    web = down_app.test_client()
    response = post(web, ONE + "F", context("u"))
    failure(response, 503, "GENERAL")
    assert response.headers["Retry-After"] == "1"
    failure(post(web, BULK, context("u")), 503, "GENERAL", key=None)


def test_the_openapi_document_has_the_ofrep_routes(web: FlaskClient) -> None:
    doc = web.get("/openapi.json").get_json()
    single = doc["paths"]["/ofrep/v1/evaluate/flags/{key}"]["post"]
    bulk = doc["paths"]["/ofrep/v1/evaluate/flags"]["post"]
    assert {"200", "400", "401", "403", "404", "413", "503"} <= set(single["responses"])
    assert {"200", "304", "400", "401", "403", "413", "503"} <= set(bulk["responses"])
    assert {"bearerAuth": []} in single["security"] and {"apiKeyAuth": []} in single["security"]
    scheme = doc["components"]["securitySchemes"]["apiKeyAuth"]
    assert scheme == {"type": "apiKey", "name": "X-API-Key", "in": "header"}
    assert any(p["name"] == "If-None-Match" for p in bulk["parameters"])
