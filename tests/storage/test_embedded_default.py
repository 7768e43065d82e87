"""Two processes on the default settings (no ROLLOUT_REDIS_URL) share one embedded server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rollout.storage.embedded import EmbeddedRedis

CREATE = (
    "from rollout.wiring import build_services; build_services().flags.create('SHARED', actor='p1')"
)
LIST = (
    "from rollout.wiring import build_services; "
    "print([f.key for f in build_services().flags.list_flags()])"
)


def run(code: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_two_processes_see_the_same_flags(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    data_dir = tmp_path / "xdg" / "rollout"
    try:
        run(CREATE, env)
        assert run(LIST, env) == "['SHARED']"
        status = EmbeddedRedis(data_dir).status()
        assert status["running"] and Path(status["aof"]).parent == data_dir
    finally:
        EmbeddedRedis(data_dir).stop()
    assert not EmbeddedRedis(data_dir).status()["running"]
