"""OFREP over a live ``rollout serve``: the real ``openfeature-provider-ofrep`` client (PyPI).

serve runs as an operator runs it (gunicorn, two workers) on the session's real redis-server.
Its answers, through the OpenFeature SDK and the OFREP provider, must be exactly the SDK's
evaluation in this process, for 1,000 users; then raw HTTP checks the wire: bulk with ETag and
304, CORS, X-API-Key, and every error body.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode

from rollout import RolloutClient
from rollout.core.openfeature import OPENFEATURE_REASON, variant
from rollout.services.container import Services
from rollout.storage.redis_process import RedisProcess
from tests.e2e.processes import Reply, Serve
from tests.support import wait_until

READ_TOKEN = "ofrep-read-token-0123456789"
ADMIN_TOKEN = "ofrep-admin-token-0123456789"
ORIGIN = "https://app.example.com"
RULE = {"attribute": "email", "op": "ends_with", "values": ["@example.com"], "serve": "on"}
USERS = 1_000


@pytest.fixture
def serve(redis_server_flushed: RedisProcess, data_dir: Path) -> Iterator[str]:
    """``rollout serve --no-controller`` with two workers over the session's Redis: its URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    env |= {
        "ROLLOUT_DATA_DIR": str(data_dir),
        "ROLLOUT_REDIS_URL": redis_server_flushed.url,
        "ROLLOUT_ADMIN_TOKENS": f"ops:{ADMIN_TOKEN}",
        "ROLLOUT_READ_TOKENS": f"gateway:{READ_TOKEN}",
        "ROLLOUT_CORS_ORIGINS": ORIGIN,
    }
    server = Serve(data_dir, env, "--no-controller", "--workers", "2")  # the last --workers wins
    try:
        server.wait_ready()
        yield server.base
        assert server.stop() == 0, server.log()
    finally:
        server.cleanup()


@pytest.fixture
def openfeature_client(serve: str) -> Iterator[Any]:
    provider = OFREPProvider(
        serve, headers_factory=lambda: {"Authorization": f"Bearer {READ_TOKEN}"}, timeout=10
    )
    api.set_provider_and_wait(provider, "ofrep")
    yield api.get_client("ofrep")
    api.shutdown()


def raw(
    base: str, path: str, data: bytes | None, headers: dict[str, str], method: str = "POST"
) -> Reply:
    """One request with exactly these bytes and headers (``http`` always sends JSON)."""
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, body, got = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        status, body, got = error.code, error.read(), dict(error.headers)
    return Reply(status, got, json.loads(body) if body else None)


def bearer(token: str = READ_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.slow
def test_the_ofrep_provider_answers_exactly_as_the_sdk(
    real_services: Services, redis_server_flushed: RedisProcess, openfeature_client: Any
) -> None:
    flags = real_services.flags
    flags.create("F", actor="t", allow=["qa-alice"], deny=["qa-bob"], rules=[RULE])
    version = flags.set_percent("F", 37.5, actor="t").version
    flags.create("K", actor="t")
    flags.set_percent("K", 100, actor="t")
    flags.kill("K", reason="drill", actor="t")
    sdk = RolloutClient(redis_server_flushed.url, resync_interval=3600)
    try:
        assert wait_until(lambda: sdk.known_flag("F") is not None)
        # Both workers follow the channel; wait until the one we reach holds this version.
        assert wait_until(
            lambda: (
                openfeature_client.get_boolean_details(
                    "F", False, EvaluationContext("u")
                ).flag_metadata.get("version")
                == version
            ),
            timeout=10,
        )
        meta = {"state": "rolling", "percent": 37.5, "version": version}
        users = ["qa-alice", "qa-bob"] + [f"user-{i}" for i in range(USERS - 2)]
        reasons = set()
        for i, user in enumerate(users):
            attributes = {"email": f"{user}@example.com"} if i % 10 == 0 else {"plan": "team"}
            context = EvaluationContext(targeting_key=user, attributes=attributes)
            details = openfeature_client.get_boolean_details("F", not i % 2, context)
            expected = sdk.evaluate("F", user, attributes=attributes)
            assert details.error_code is None, (user, details)
            assert details.value is expected.enabled, user
            assert details.variant == variant(expected.enabled)
            assert details.reason == OPENFEATURE_REASON[expected.reason], user
            assert details.flag_metadata == meta
            reasons.add(str(expected.reason))
        assert reasons == {"allowed", "denied", "rule", "in_cohort", "out_of_cohort"}

        killed = openfeature_client.get_boolean_details("K", True, EvaluationContext("qa-alice"))
        assert (killed.value, killed.reason, killed.variant) == (False, "DISABLED", "off")
        unknown = openfeature_client.get_boolean_details("NOPE", True, EvaluationContext("u"))
        assert unknown.value is True and unknown.error_code == ErrorCode.FLAG_NOT_FOUND
        missing = openfeature_client.get_boolean_details("F", True, EvaluationContext())
        assert missing.value is True and missing.error_code == ErrorCode.TARGETING_KEY_MISSING

        flags.kill("F", reason="e2e", actor="t")
        assert wait_until(
            lambda: (
                openfeature_client.get_boolean_details(
                    "F", True, EvaluationContext("qa-alice")
                ).reason
                == "DISABLED"
            ),
            timeout=10,
        )
        assert wait_until(lambda: sdk.evaluate("F", "qa-alice").reason == "killed")
    finally:
        sdk.close()


@pytest.mark.slow
def test_the_wire_bulk_etag_cors_api_key_and_error_bodies(
    real_services: Services, serve: str
) -> None:
    real_services.flags.create("A", actor="t", allow=["qa-alice"])
    real_services.flags.create("B", actor="t")
    real_services.flags.set_percent("B", 50, actor="t")
    body = json.dumps({"context": {"targetingKey": "qa-alice"}}).encode()
    bulk = "/ofrep/v1/evaluate/flags"

    def both_flags() -> bool:
        answer = raw(serve, bulk, body, bearer())
        return answer.status == 200 and [f["key"] for f in answer.body["flags"]] == ["A", "B"]

    assert wait_until(both_flags, timeout=10)
    first = raw(serve, bulk, body, {"X-API-Key": READ_TOKEN, "Content-Type": "text/plain"})
    assert first.status == 200, first.body
    etag = first.headers["ETag"]
    assert first.body["flags"][0]["reason"] == "TARGETING_MATCH"
    # Every worker renders the same bytes for the same flags, so the ETag holds across them.
    for _ in range(6):
        again = raw(serve, bulk, body, {**bearer(ADMIN_TOKEN), "If-None-Match": etag})
        assert again.status == 304 and again.body is None and again.headers["ETag"] == etag

    preflight = raw(
        serve,
        bulk,
        None,
        {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
        method="OPTIONS",
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "X-API-Key" in preflight.headers["Access-Control-Allow-Headers"]
    cors = raw(serve, bulk, body, {**bearer(), "Origin": ORIGIN})
    assert cors.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert cors.headers["Access-Control-Expose-Headers"] == "ETag"

    one = "/ofrep/v1/evaluate/flags/B"
    for data, headers, status, code in (
        (body, {}, 401, "GENERAL"),
        (body, {"X-API-Key": "nobody-has-this-token-here"}, 403, "GENERAL"),
        (b"{not json", bearer(), 400, "PARSE_ERROR"),
        (b'{"context": {"targetingKey": 7}}', bearer(), 400, "INVALID_CONTEXT"),
        (b"", bearer(), 400, "TARGETING_KEY_MISSING"),
        (b"{}" + b" " * (64 * 1024), bearer(), 413, "GENERAL"),
    ):
        answer = raw(serve, one, data, headers)
        assert answer.status == status, (data[:30], answer.body)
        assert set(answer.body) == {"key", "errorCode", "errorDetails"}
        assert (answer.body["key"], answer.body["errorCode"]) == ("B", code)
    refused = raw(serve, bulk, body, {})
    assert refused.status == 401 and set(refused.body) == {"errorCode", "errorDetails"}
    missing = raw(serve, "/ofrep/v1/evaluate/flags/NOPE", body, bearer())
    assert missing.status == 404 and missing.body["errorCode"] == "FLAG_NOT_FOUND"
