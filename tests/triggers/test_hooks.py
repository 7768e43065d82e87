"""Inbound triggers over HTTP, on every topology: create, fire, resolve, refuse."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from rollout.api.app import create_app
from rollout.services.container import Services
from rollout.wiring import build_services
from tests.api.conftest import ADMIN, READ, TOKENS, error_of
from tests.conftest import make_settings
from tests.support import FakeClock

FIRING = {
    "version": "4",
    "status": "firing",
    "receiver": "rollout",
    "groupKey": '{}:{alertname="HighErrorRate"}',
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "HighErrorRate", "service": "skills"},
            "annotations": {"summary": "5xx above 10%\x07 for 5m\nin eu-west"},
        }
    ],
}
RESOLVED = {
    **FIRING,
    "status": "resolved",
    "alerts": [{**FIRING["alerts"][0], "status": "resolved"}],
}
GROUPED = {
    **FIRING,
    "alerts": [
        {"status": "firing", "labels": {"alertname": "HighErrorRate"},
         "annotations": {"summary": "errors up"}},
        {"status": "resolved", "labels": {"alertname": "OldAlert"},
         "annotations": {"summary": "gone"}},
        {"status": "firing", "labels": {"alertname": "HighLatency"},
         "annotations": {"summary": "p95 over 2s"}},
    ],
}  # fmt: skip


@pytest.fixture
def app_services(real_redis: Any, clock: FakeClock) -> Iterator[tuple[FlaskClient, Services]]:
    services = build_services(
        make_settings(**TOKENS, public_url="https://rollout.example.com/"),
        redis_client=real_redis,
        clock=clock,
    )
    services.flags.create("F", actor="seed", stages=[{"percent": 10}, {"percent": 100}])
    services.flags.advance("F", actor="seed")
    yield create_app(services).test_client(), services
    services.close()


def make_trigger(client: FlaskClient, name: str = "pager") -> tuple[str, str]:
    response = client.post("/api/v1/flags/F/triggers", json={"name": name}, headers=ADMIN)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    url = body["url"]
    assert url.startswith("https://rollout.example.com/hooks/triggers/")
    return body["id"], url.removeprefix("https://rollout.example.com")


def audit_count(services: Services) -> int:
    return len(services.flags.audit("F", limit=10_000))


def test_create_is_admin_only_audited_and_stores_only_a_hash(
    app_services: tuple[FlaskClient, Services], real_redis: Any
) -> None:
    client, services = app_services
    assert client.post("/api/v1/flags/F/triggers", json={}, headers=READ).status_code == 403
    assert client.post("/api/v1/flags/F/triggers", json={}).status_code == 401
    trigger_id, path = make_trigger(client)
    secret = path.rsplit("/", 1)[1]
    entry = services.flags.audit("F", limit=1)[0]
    assert (entry["action"], entry["actor"]) == ("trigger_create", "alice")
    assert trigger_id in entry["reason"] and secret not in json.dumps(entry)
    dump = json.dumps({k: real_redis.dump(k).hex() for k in real_redis.keys("*")})
    assert secret not in dump and secret.encode().hex() not in dump
    listed = client.get("/api/v1/flags/F/triggers", headers=READ).get_json()["triggers"]
    assert [t["id"] for t in listed] == [trigger_id] and "url" not in listed[0]
    assert secret not in json.dumps(listed)


def test_firing_alert_kills_with_the_alerts_named(
    app_services: tuple[FlaskClient, Services],
) -> None:
    client, services = app_services
    _trigger_id, path = make_trigger(client)
    # A form content type, as curl -d sends: the body is still read as JSON.
    response = client.post(
        path, data=json.dumps(FIRING), content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["flag"] == "F" and body["killed"] is True
    flag = services.flags.get("F")
    assert flag.state == "killed" and flag.kill is not None
    assert flag.kill.by == "trigger:pager"
    assert "HighErrorRate (5xx above 10% for 5m in eu-west)" in flag.kill.reason
    assert "\x07" not in flag.kill.reason and "\n" not in flag.kill.reason
    assert services.flags.audit("F", limit=1)[0]["actor"] == "trigger:pager"
    assert services.triggers.list("F")[0].last_fired_at is not None
    # Already killed: 200, nothing written.
    before = audit_count(services)
    again = client.post(path, json=FIRING)
    assert again.status_code == 200 and again.get_json()["killed"] is False
    assert audit_count(services) == before


def test_resolved_alert_does_nothing_and_says_so(
    app_services: tuple[FlaskClient, Services],
) -> None:
    client, services = app_services
    _, path = make_trigger(client)
    before = audit_count(services)
    response = client.post(path, data=json.dumps(RESOLVED), content_type="text/plain")
    assert response.status_code == 200
    body = response.get_json()
    assert body["killed"] is False and "resolved" in body["message"]
    assert services.flags.get("F").state == "rolling"
    assert audit_count(services) == before


def test_grouped_alerts_name_every_firing_alert(app_services: tuple[FlaskClient, Services]) -> None:
    client, services = app_services
    _, path = make_trigger(client)
    assert client.post(path, json=GROUPED).get_json()["killed"] is True
    reason = services.flags.get("F").kill.reason  # type: ignore[union-attr]
    assert "HighErrorRate (errors up)" in reason and "HighLatency (p95 over 2s)" in reason
    assert "OldAlert" not in reason


@pytest.mark.parametrize(
    ("data", "content_type"),
    [(b"", None), (b'{"anything": 1}', "application/json"), (b"not json {", "application/json")],
)
def test_any_other_body_kills_in_the_triggers_name(
    app_services: tuple[FlaskClient, Services], data: bytes, content_type: str | None
) -> None:
    client, services = app_services
    _, path = make_trigger(client, name="grafana")
    response = client.post(path, data=data, content_type=content_type)
    assert response.status_code == 200 and response.get_json()["killed"] is True
    kill = services.flags.get("F").kill
    assert kill is not None and kill.by == "trigger:grafana" and "grafana" in kill.reason


def test_a_long_summary_is_bounded(app_services: tuple[FlaskClient, Services]) -> None:
    client, services = app_services
    _, path = make_trigger(client)
    long = {
        **FIRING,
        "alerts": [{"labels": {"alertname": "X"}, "annotations": {"summary": "y" * 5000}}],
    }
    assert client.post(path, json=long).status_code == 200
    assert len(services.flags.get("F").kill.reason) <= 500  # type: ignore[union-attr]


def test_wrong_secret_wrong_id_and_deleted_trigger_are_the_same_404(
    app_services: tuple[FlaskClient, Services],
) -> None:
    client, services = app_services
    trigger_id, path = make_trigger(client)
    other_id, other_path = make_trigger(client, name="other")
    before = audit_count(services)
    secret = path.rsplit("/", 1)[1]
    answers = [
        client.post(f"/hooks/triggers/{trigger_id}/{'x' * len(secret)}", json=FIRING),
        client.post(f"/hooks/triggers/{'0' * 16}/{secret}", json=FIRING),
        client.post(f"/hooks/triggers/not-an-id/{secret}", json=FIRING),
    ]
    services.triggers.delete(other_id, actor="alice")
    after_delete = audit_count(services)
    answers.append(client.post(other_path, json=FIRING))
    bodies = {json.dumps(error_of(a), sort_keys=True) for a in answers}
    assert {a.status_code for a in answers} == {404} and len(bodies) == 1
    assert secret not in bodies.pop()
    assert services.flags.get("F").state == "rolling"
    assert after_delete == before + 1  # only the delete's own audit entry
    assert audit_count(services) == after_delete
    assert services.flags.audit("F", limit=1)[0]["action"] == "trigger_delete"


def test_rate_limit_comes_after_the_secret(
    app_services: tuple[FlaskClient, Services], clock: FakeClock
) -> None:
    client, _services = app_services
    trigger_id, path = make_trigger(client)
    codes = [client.post(path, json=RESOLVED).status_code for _ in range(12)]
    assert codes[:10] == [200] * 10 and codes[10:] == [429, 429]
    limited = client.post(path, json=RESOLVED)
    assert limited.headers["Retry-After"] == "1" and error_of(limited)["code"] == "rate_limited"
    # A wrong secret is never rate limited: it reads as 404 however often it is tried.
    wrong = [client.post(f"/hooks/triggers/{trigger_id}/wrong", json=RESOLVED) for _ in range(3)]
    assert {w.status_code for w in wrong} == {404}
    clock.advance(1.0)
    assert client.post(path, json=RESOLVED).status_code == 200


def test_body_limits(app_services: tuple[FlaskClient, Services]) -> None:
    client, services = app_services
    _, path = make_trigger(client)
    big = b"x" * (64 * 1024 + 1)
    response = client.post(path, data=big, content_type="application/json")
    assert response.status_code == 413 and error_of(response)["code"] == "payload_too_large"
    chunked = client.post(
        path,
        input_stream=io.BytesIO(big),
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},  # what gunicorn sets for chunked
    )
    assert chunked.status_code == 413
    assert services.flags.get("F").state == "rolling"
    exactly = b" " * (64 * 1024)
    assert client.post(path, data=exactly).get_json()["killed"] is True


def test_unknown_flag_and_bad_name_are_4xx(app_services: tuple[FlaskClient, Services]) -> None:
    client, _ = app_services
    missing = client.post("/api/v1/flags/NOPE/triggers", json={}, headers=ADMIN)
    assert missing.status_code == 404 and error_of(missing)["code"] == "flag_not_found"
    bad = client.post("/api/v1/flags/F/triggers", json={"name": "a b"}, headers=ADMIN)
    assert bad.status_code == 422


def test_snapshot_restore_brings_triggers_back(app_services: tuple[FlaskClient, Services]) -> None:
    client, services = app_services
    trigger_id, path = make_trigger(client)
    document = services.snapshots.take()
    secret = path.rsplit("/", 1)[1]
    assert [t["id"] for t in document["triggers"]] == [trigger_id]
    assert secret not in json.dumps(document)
    services.triggers.delete(trigger_id, actor="alice")
    assert client.post(path, json=FIRING).status_code == 404
    services.snapshots.restore(document, actor="alice")
    assert [t.id for t in services.triggers.list()] == [trigger_id]
    assert client.post(path, json=FIRING).get_json()["killed"] is True


def test_build_services_without_public_url_gives_a_bare_path(
    real_redis: Any, clock: FakeClock
) -> None:
    services = build_services(make_settings(), redis_client=real_redis, clock=clock)
    services.flags.create("G", actor="seed")
    created = services.triggers.create("G", actor="seed")
    assert created.url.startswith("/hooks/triggers/" + created.trigger.id + "/")
    assert len(created.url.rsplit("/", 1)[1]) >= 43  # 32 random bytes, urlsafe base64


def test_a_cluster_outage_is_the_same_503_as_one_server_down(
    own_cluster: Any, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Every node of a Cluster gone: a trigger's POST and create answer 503, as they do when
    one server is down (below), never a 500; and the log shows no secret."""
    services = build_services(
        make_settings(
            **TOKENS, redis_url=own_cluster.url, public_url="https://rollout.example.com/"
        ),
        clock=clock,
    )  # wired from the URL, as serve and gunicorn wire it
    try:
        client = create_app(services).test_client()
        services.flags.create("F", actor="seed")
        _, path = make_trigger(client)
        secret = path.rsplit("/", 1)[1]
        for node in own_cluster.nodes:
            node.stop()
        with caplog.at_level("WARNING", logger="rollout.api"):
            fired = client.post(path, json=FIRING)
            created = client.post("/api/v1/flags/F/triggers", json={}, headers=ADMIN)
        for response in (fired, created):
            assert response.status_code == 503, response.get_data(as_text=True)
            assert error_of(response)["code"] == "storage_unavailable"
        assert secret not in caplog.text and secret not in fired.get_data(as_text=True)
        assert "Traceback" not in caplog.text
    finally:
        services.close()


def test_a_trigger_secret_is_never_logged_or_echoed(
    down_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis away: 503, and the log line names the route without the secret."""
    client = down_app.test_client()
    with caplog.at_level("WARNING", logger="rollout.api"):
        response = client.post(f"/hooks/triggers/{'a' * 16}/sekrit-value-123", json=FIRING)
    assert response.status_code == 503
    assert "sekrit-value-123" not in caplog.text and "/hooks/triggers/[redacted]" in caplog.text
    assert "sekrit-value-123" not in response.get_data(as_text=True)
    extra = client.post("/hooks/triggers/x/sekrit-value-123/more")
    assert extra.status_code == 404 and "sekrit" not in extra.get_data(as_text=True)


def test_a_trigger_of_a_deleted_flag_cannot_kill_a_flag_created_later_under_its_key(
    app_services: tuple[FlaskClient, Services], clock: FakeClock
) -> None:
    client, services = app_services
    _trigger_id, path = make_trigger(client)
    services.flags.delete("F", actor="alice")
    clock.advance(5)
    services.flags.create("F", actor="alice", stages=[{"percent": 10}, {"percent": 100}])
    services.flags.advance("F", actor="alice")
    answer = client.post(path, json=FIRING)
    assert answer.status_code == 404 and error_of(answer)["code"] == "trigger_not_found"
    assert services.flags.get("F").state == "rolling"
    _new_id, new_path = make_trigger(client)  # one made for the new flag works
    assert client.post(new_path, json=FIRING).status_code == 200
    assert services.flags.get("F").state == "killed"
