"""``rollout serve`` with a trigger and a destination, on every topology: an Alertmanager
payload posted with curl kills the flag, an SDK following the same Redis turns it off, serve's
notifier delivers the signed kill, and the access log never shows the trigger's secret."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from rollout.core.destinations import Destination
from rollout.core.evaluation import Reason
from rollout.core.events import verify
from rollout.sdk.client import RolloutClient
from rollout.wiring import build_services
from tests.conftest import make_settings
from tests.e2e.processes import Serve, http
from tests.notify.receiver import serving
from tests.support import wait_until
from tests.topology_fixtures import real_redis as real_redis  # fixtures, offered to this module
from tests.topology_fixtures import real_url as real_url
from tests.topology_fixtures import topology as topology

TOKEN = "admin-token-0123456789abcdef"
SECRET = "whsec-e2e-0123456789"
ALERT = {
    "version": "4",
    "status": "firing",
    "receiver": "rollout",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "HighErrorRate"},
            "annotations": {"summary": "5xx above 10%"},
        }
    ],
}


@pytest.mark.slow
def test_curl_alert_kills_and_the_notifier_tells(
    data_dir: Path, real_redis: Any, real_url: str
) -> None:
    services = build_services(make_settings(), redis_client=real_redis)
    services.flags.create("F", actor="seed", stages=[{"percent": 10}])
    services.flags.advance("F", actor="seed")
    services.notify.save(
        Destination("oncall", "HOOK_URL", events=("kill",), secret_env="HOOK_SECRET")
    )
    alert = data_dir / "alert.json"
    alert.write_text(json.dumps(ALERT))
    users = [f"user-{i}" for i in range(200)]
    # No resync for an hour: the kill can reach this SDK only through the change channel.
    sdk = RolloutClient(real_url, resync_interval=3600)
    with serving() as receiver:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
        env |= {
            "ROLLOUT_DATA_DIR": str(data_dir),
            "ROLLOUT_REDIS_URL": real_url,
            "ROLLOUT_ADMIN_TOKENS": f"admin:{TOKEN}",
            "HOOK_URL": receiver.url,
            "HOOK_SECRET": SECRET,
        }
        serve = Serve(data_dir, env, "--no-controller", "--access-log")
        try:
            assert wait_until(lambda: sdk.known_flag("F") is not None, timeout=30)
            assert any(sdk.is_enabled("F", user) for user in users)  # 10%: some are on
            serve.wait_ready()
            created = http(serve.base, "POST", "/api/v1/flags/F/triggers", TOKEN, {"name": "pager"})
            assert created.status == 201, created.body
            path = created.body["url"]
            secret = path.rsplit("/", 1)[1]
            out = subprocess.run(
                ["curl", "-sS", "-d", f"@{alert}", serve.base + path],
                capture_output=True, text=True, timeout=30, check=True,
            )  # fmt: skip
            answer = json.loads(out.stdout)
            assert answer["killed"] is True and answer["flag"] == "F", answer
            assert wait_until(
                lambda: sdk.evaluate("F", users[0]).reason == Reason.KILLED, timeout=30
            )
            assert not any(sdk.is_enabled("F", user) for user in users)
            assert wait_until(lambda: len(receiver.accepted) == 1, timeout=30), serve.log()
            [got] = receiver.accepted
            assert verify(SECRET, got.headers["Rollout-Signature"], got.body)
            assert got.json["type"] == "kill" and got.json["actor"] == "trigger:pager"
            assert "HighErrorRate (5xx above 10%)" in got.json["reason"]
            assert wait_until(lambda: "/hooks/triggers/[redacted]" in serve.log(), timeout=10)
        finally:
            serve.stop()
            sdk.close()
        log = serve.log()
        assert secret not in log and "s3cr3t-path" not in log, log
    assert services.flags.get("F").state == "killed"
    services.close()
