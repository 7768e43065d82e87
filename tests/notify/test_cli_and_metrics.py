"""``rollout notify list|test``, ``rollout notifier --once`` and the notifier's /metrics."""

from __future__ import annotations

import json

from rollout.api.app import create_app
from rollout.core.destinations import Destination
from rollout.core.events import verify
from rollout.services.container import Services
from tests.cli.conftest import Cli
from tests.notify.receiver import serving


def test_notify_list_masks_urls_and_says_unsigned(real_services: Services) -> None:
    real_services.notify.save(Destination("plain", "PLAIN_URL"))
    real_services.notify.save(Destination("signed", "SIGNED_URL", secret_env="SIGNED_SECRET"))
    run = Cli(real_services)
    env = {"PLAIN_URL": "https://hooks.example.com/T000/B000/abcdefSECRET"}
    result = run("notify", "list", "--json", env=env)
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["plain"]["url"] == "https://hooks.example.com/…" and not rows["plain"]["signed"]
    assert rows["signed"]["signed"] and rows["signed"]["url"] is None
    assert "abcdefSECRET" not in result.output
    human = run.ok("notify", "list").stdout
    assert "unsigned" in human and "signed (SIGNED_SECRET)" in human


def test_notify_test_sends_a_signed_test_event(real_services: Services) -> None:
    real_services.notify.save(Destination("d", "D_URL", secret_env="D_SECRET"))
    run = Cli(real_services)
    with serving() as receiver:
        result = run("notify", "test", "d", env={"D_URL": receiver.url, "D_SECRET": "k" * 20})
        assert result.exit_code == 0, result.output
        assert "HTTP 200" in result.stdout and "s3cr3t-path" not in result.output
        [got] = receiver.accepted
        assert got.json["type"] == "test" and verify(
            "k" * 20, got.headers["Rollout-Signature"], got.body
        )
    with serving([503]) as failing:
        result = run("notify", "test", "d", env={"D_URL": failing.url, "D_SECRET": "k"})
        assert result.exit_code == 1 and "HTTP 503" in result.stderr
    missing = run("notify", "test", "d", env={})
    assert missing.exit_code == 2 and "D_URL (url_env) is not set" in missing.stderr
    assert "does not exist" in run.fails(1, "notify", "test", "nope")


def test_notifier_once_and_metrics(real_services: Services) -> None:
    real_services.notify.save(Destination("d", "D_URL"))
    real_services.flags.create("F", actor="op")
    run = Cli(real_services)
    assert "D_URL (url_env) is not set" in run.fails(2, "notifier", "--once")
    with serving() as receiver:
        result = run("notifier", "--once", env={"D_URL": receiver.url})
        assert result.exit_code == 0, result.output
        assert "delivered 1 event(s)" in result.stdout
    metrics = create_app(real_services).test_client().get("/metrics").get_data(as_text=True)
    assert 'rollout_notify_delivered_total{destination="d"} 1.0' in metrics
    assert 'rollout_notify_backlog{destination="d"} 0.0' in metrics
    assert "s3cr3t" not in metrics and "127.0.0.1" not in metrics
