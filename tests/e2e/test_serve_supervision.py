"""``rollout serve`` as a supervisor: the pair lives and dies together, and restarts keep the token.

Real processes on the session's Redis (none of these tests stops it): serve, gunicorn and the
controller, found through /proc. A child is killed with SIGKILL, as the OOM killer would; serve
must then stop the other and exit non-zero, so a process manager restarts a whole pair rather
than run an API whose controller is gone (no automatic kills) or a controller nobody can reach.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from rollout.storage.redis_process import RedisProcess
from tests.e2e.processes import STOP_TIMEOUT, Serve, command_line, descendants, gone, http
from tests.support import wait_until

EXIT_REFUSED = 1


def environment(data_dir: Path, redis: RedisProcess) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    return {**env, "ROLLOUT_DATA_DIR": str(data_dir), "ROLLOUT_REDIS_URL": redis.url}


def both_children(serve: Serve) -> dict[str, int]:
    found: dict[str, int] = {}

    def started() -> bool:
        found.update(serve.children())
        return set(found) == {"gunicorn", "controller"}

    assert wait_until(started, timeout=10), (found, serve.log())
    return found


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["controller", "gunicorn"])
def test_when_one_child_dies_serve_stops_the_other_and_fails(
    victim: str, data_dir: Path, redis_server_flushed: RedisProcess
) -> None:
    serve = Serve(data_dir, environment(data_dir, redis_server_flushed))
    try:
        serve.wait_ready()
        children = both_children(serve)
        everyone = descendants(serve.pid)
        survivor = children["gunicorn" if victim == "controller" else "controller"]
        os.kill(children[victim], signal.SIGKILL)
        assert serve.proc.wait(timeout=STOP_TIMEOUT) == EXIT_REFUSED, serve.log()
        assert "a child process exited; stopped the others" in serve.log()
        assert gone(survivor)
        # gunicorn's workers too: a worker left holding the port would block the restart.
        assert wait_until(lambda: all(gone(pid) for pid in everyone), timeout=STOP_TIMEOUT)
    finally:
        serve.cleanup()


@pytest.mark.slow
def test_no_controller_serves_the_api_alone(
    data_dir: Path, redis_server_flushed: RedisProcess
) -> None:
    serve = Serve(data_dir, environment(data_dir, redis_server_flushed), "--no-controller")
    try:
        serve.wait_ready()
        token = (data_dir / "admin-token").read_text().strip()
        created = http(serve.base, "POST", "/api/v1/flags", token, {"key": "F"})
        assert created.status == 201, created.body
        assert set(serve.children()) == {"gunicorn"}
        everyone = descendants(serve.pid)
        assert not any("controller" in " ".join(command_line(pid)) for pid in everyone), everyone
        assert serve.stop() == 0, serve.log()
    finally:
        serve.cleanup()


@pytest.mark.slow
def test_a_restart_reuses_the_admin_token(
    data_dir: Path, redis_server_flushed: RedisProcess
) -> None:
    env = environment(data_dir, redis_server_flushed)
    token_file = data_dir / "admin-token"
    first = Serve(data_dir, env)
    try:
        first.wait_ready()
        token = token_file.read_text().strip()
        assert f"Created an admin token in {token_file}" in first.log()
        assert first.stop() == 0, first.log()
    finally:
        first.cleanup()
    second = Serve(data_dir, env)
    try:
        second.wait_ready()
        assert f"Admin token: {token_file}" in second.log()
        assert "Created" not in second.log()
        assert token_file.read_text().strip() == token
        assert token not in second.log()  # told where it is, never what it is
        assert http(second.base, "POST", "/api/v1/flags", token, {"key": "F"}).status == 201
        audit = http(second.base, "GET", "/api/v1/audit?flag=F", token).body["entries"]
        assert [(e["actor"], e["action"]) for e in audit] == [("admin", "create")]
        assert http(second.base, "GET", "/api/v1/flags", token[::-1]).status == 401
        assert second.stop() == 0, second.log()
    finally:
        second.cleanup()
