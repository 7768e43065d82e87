"""``DELETE /api/v1/flags/{key}/triggers/{id}``, on every topology: admin only, audited once on
the flag, every miss the same 404, and the deleted trigger's URL answers 404 at once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from rollout.api.app import create_app
from rollout.services.container import Services
from rollout.storage.connection import client_for_url
from rollout.storage.redis_process import RedisProcess
from rollout.wiring import build_services
from tests.api.conftest import ADMIN, READ, TOKENS, error_of
from tests.cli.conftest import ACTOR, Cli
from tests.conftest import make_settings
from tests.support import FakeClock
from tests.triggers.test_hooks import FIRING, app_services, audit_count, make_trigger

__all__ = ["app_services"]  # a fixture, used by name


def url(trigger_id: str, key: str = "F") -> str:
    return f"/api/v1/flags/{key}/triggers/{trigger_id}"


def listed(client: FlaskClient, key: str = "F") -> list[str]:
    response = client.get(f"/api/v1/flags/{key}/triggers", headers=READ)
    assert response.status_code == 200, response.get_json()
    return [t["id"] for t in response.get_json()["triggers"]]


def test_admin_deletes_audited_once_and_the_url_answers_404(
    app_services: tuple[FlaskClient, Services],
) -> None:
    client, services = app_services
    trigger_id, path = make_trigger(client)
    kept_id, kept_path = make_trigger(client, name="kept")
    before = audit_count(services)
    response = client.delete(url(trigger_id), headers=ADMIN)
    assert response.status_code == 204 and response.get_data() == b""
    assert listed(client) == [kept_id]
    assert audit_count(services) == before + 1  # exactly one entry: the delete's
    entry = services.flags.audit("F", limit=1)[0]
    assert (entry["action"], entry["actor"]) == ("trigger_delete", "alice")
    assert entry["reason"] == f"trigger pager ({trigger_id}) deleted"
    assert path.rsplit("/", 1)[1] not in json.dumps(entry)
    # The URL is dead at once: a firing alert finds nothing, kills nothing, writes nothing.
    fired = client.post(path, json=FIRING)
    assert fired.status_code == 404 and error_of(fired)["code"] == "trigger_not_found"
    assert services.flags.get("F").state == "rolling"
    assert audit_count(services) == before + 1
    # The other trigger of the flag still works.
    assert client.post(kept_path, json=FIRING).get_json()["killed"] is True


def test_a_read_token_is_403_and_no_token_401_and_nothing_changes(
    app_services: tuple[FlaskClient, Services],
) -> None:
    client, services = app_services
    trigger_id, path = make_trigger(client)
    before = audit_count(services)
    forbidden = client.delete(url(trigger_id), headers=READ)
    assert forbidden.status_code == 403 and error_of(forbidden)["code"] == "forbidden"
    unauthorized = client.delete(url(trigger_id))
    assert unauthorized.status_code == 401 and error_of(unauthorized)["code"] == "unauthorized"
    assert unauthorized.headers["WWW-Authenticate"] == 'Bearer realm="rollout"'
    wrong = client.delete(url(trigger_id), headers={"Authorization": "Bearer not-a-token-at-all"})
    assert wrong.status_code == 401 and error_of(wrong)["code"] == "unauthorized"
    assert listed(client) == [trigger_id] and audit_count(services) == before
    assert client.post(path, json=FIRING).get_json()["killed"] is True  # still a live trigger


def test_every_miss_is_the_same_404_and_writes_nothing(
    app_services: tuple[FlaskClient, Services],
) -> None:
    client, services = app_services
    services.flags.create("G", actor="seed")
    trigger_id, path = make_trigger(client)
    other = client.post("/api/v1/flags/G/triggers", json={"name": "g"}, headers=ADMIN)
    other_id = other.get_json()["id"]
    gone_id, _ = make_trigger(client, name="gone")
    assert client.delete(url(gone_id), headers=ADMIN).status_code == 204
    before = {key: len(services.flags.audit(key, limit=10_000)) for key in ("F", "G")}
    misses = {
        "unknown id": client.delete(url("0123456789abcdef"), headers=ADMIN),
        "a trigger of another flag": client.delete(url(other_id), headers=ADMIN),
        "an unknown flag": client.delete(url(trigger_id, key="NOPE"), headers=ADMIN),
        "a deleted trigger": client.delete(url(gone_id), headers=ADMIN),
    }
    for case, response in misses.items():
        assert response.status_code == 404, case
        assert error_of(response) == {"code": "trigger_not_found", "message": "no such trigger"}
    assert len({r.get_data() for r in misses.values()}) == 1  # byte for byte the same
    assert len({tuple(sorted(r.headers.keys())) for r in misses.values()}) == 1
    after = {key: len(services.flags.audit(key, limit=10_000)) for key in ("F", "G")}
    assert after == before
    assert listed(client) == [trigger_id] and listed(client, "G") == [other_id]
    assert client.post(path, json=FIRING).get_json()["killed"] is True


def test_a_trigger_left_by_a_deleted_flag_can_still_be_deleted(
    app_services: tuple[FlaskClient, Services],
) -> None:
    client, services = app_services
    services.flags.create("G", actor="seed")
    created = client.post("/api/v1/flags/G/triggers", json={"name": "g"}, headers=ADMIN)
    left_id = created.get_json()["id"]
    services.flags.delete("G", actor="seed")
    before = len(services.flags.audit("G", limit=10_000))
    assert client.delete(url(left_id, key="G"), headers=ADMIN).status_code == 204
    assert [t.id for t in services.triggers.list()] == []
    assert len(services.flags.audit("G", limit=10_000)) == before  # no flag to note it on
    again = client.delete(url(left_id, key="G"), headers=ADMIN)
    assert again.status_code == 404 and error_of(again)["code"] == "trigger_not_found"


def test_a_malformed_id_or_key_is_422(app_services: tuple[FlaskClient, Services]) -> None:
    client, services = app_services
    trigger_id, _ = make_trigger(client)
    before = audit_count(services)
    bad_id = client.delete(url("not-hex-at-all!"), headers=ADMIN)
    assert bad_id.status_code == 422 and error_of(bad_id)["field"] == "id"
    bad_key = client.delete(url(trigger_id, key="no spaces"), headers=ADMIN)
    assert bad_key.status_code == 422 and error_of(bad_key)["code"] == "validation_error"
    assert listed(client) == [trigger_id] and audit_count(services) == before


def test_cli_and_api_deletes_are_the_same_service_call(
    app_services: tuple[FlaskClient, Services],
) -> None:
    """Both write the very same audit entry (only the actor differs) and both leave a URL that
    answers 404; the CLI deletes by id alone, the API under the flag's key."""
    client, services = app_services
    by_api, api_path = make_trigger(client, name="same")
    by_cli, cli_path = make_trigger(client, name="same")
    before = audit_count(services)
    assert client.delete(url(by_api), headers=ADMIN).status_code == 204
    api_entry = services.flags.audit("F", limit=1)[0]
    Cli(services).ok("trigger", "delete", by_cli)
    cli_entry = services.flags.audit("F", limit=1)[0]
    assert audit_count(services) == before + 2  # one entry each
    assert (api_entry["action"], cli_entry["action"]) == ("trigger_delete", "trigger_delete")
    assert (api_entry["actor"], cli_entry["actor"]) == ("alice", ACTOR)
    for entry, trigger_id in ((api_entry, by_api), (cli_entry, by_cli)):
        assert entry["reason"] == f"trigger same ({trigger_id}) deleted"
        assert entry["before"] == entry["after"]  # no flag change, no version bump
    for path in (api_path, cli_path):
        assert client.post(path, json=FIRING).status_code == 404


@pytest.fixture
def single_server_app(
    redis_server_flushed: RedisProcess, clock: FakeClock
) -> Iterator[tuple[FlaskClient, Services, Any]]:
    redis_client = client_for_url(redis_server_flushed.url)
    services = build_services(make_settings(**TOKENS), redis_client=redis_client, clock=clock)
    services.flags.create("F", actor="seed")
    services.flags.create("G", actor="seed")
    yield create_app(services).test_client(), services, redis_client
    services.close()
    redis_client.close()


def test_every_miss_costs_the_same_redis_work(
    single_server_app: tuple[FlaskClient, Services, Any],
) -> None:
    """No miss answers faster than another for asking less: each one is exactly one HGET
    (counted by the server), whether the id, the flag or the pairing is what is wrong."""
    client, services, redis_client = single_server_app
    trigger_id = services.triggers.create("F", actor="seed").trigger.id
    other_id = services.triggers.create("G", actor="seed").trigger.id
    services.summaries.drain()

    def commands(path: str) -> dict[str, int]:
        redis_client.config_resetstat()
        assert client.delete(path, headers=ADMIN).status_code == 404
        stats = redis_client.info("commandstats")
        return {
            name.removeprefix("cmdstat_"): int(row["calls"])
            for name, row in stats.items()
            if name not in ("cmdstat_config|resetstat", "cmdstat_info", "cmdstat_config")
        }

    work = [
        commands(url("0123456789abcdef")),
        commands(url(other_id)),
        commands(url(trigger_id, key="NOPE")),
    ]
    assert work == [{"hget": 1}] * 3
    # The hit, for contrast (and to show the counting sees the route's work): it deletes.
    redis_client.config_resetstat()
    assert client.delete(url(trigger_id), headers=ADMIN).status_code == 204
    assert "hdel" in {n.removeprefix("cmdstat_") for n in redis_client.info("commandstats")}
