"""rollout embedded status|stop: never starts a server, stops the one of the data dir."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from rollout.cli.main import cli
from rollout.storage.embedded import EmbeddedRedis


def test_status_and_stop(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    runner = CliRunner(env={"ROLLOUT_DATA_DIR": str(data_dir)})
    status = runner.invoke(cli, ["embedded", "status", "--json"])
    assert status.exit_code == 0 and json.loads(status.stdout)["running"] is False
    assert not data_dir.exists()  # asking did not start anything
    stop = runner.invoke(cli, ["embedded", "stop"])
    assert stop.exit_code == 0 and "no embedded Redis was running" in stop.stdout

    server = EmbeddedRedis(data_dir)
    server.ensure_running()
    try:
        status = runner.invoke(cli, ["embedded", "status"])
        assert status.exit_code == 0 and "running (pid " in status.stdout
        # The CLI's default is this same server.
        assert runner.invoke(cli, ["create", "EMB"]).exit_code == 0
        stop = runner.invoke(cli, ["embedded", "stop", "--json"])
        assert stop.exit_code == 0 and json.loads(stop.stdout)["stopped"] is True
        assert server.running_url() is None
    finally:
        server.stop()


def test_status_notes_an_external_redis_url(tmp_path: Path) -> None:
    env = {"ROLLOUT_DATA_DIR": str(tmp_path), "ROLLOUT_REDIS_URL": "redis://elsewhere:6379/0"}
    result = CliRunner(env=env).invoke(cli, ["embedded", "status"])
    assert result.exit_code == 0 and result.stderr.startswith("note: a Redis URL is set")
