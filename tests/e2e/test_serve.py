"""``rollout serve`` end to end: a real gunicorn, controller and embedded Redis in subprocesses.

The one test here is what an operator does on a fresh machine: start serve with nothing
configured, find the admin token it made, drive a flag over HTTP and through the CLI (which
finds the same embedded server through ROLLOUT_DATA_DIR), then stop serve with SIGTERM and check
that it takes its children with it.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path

import pytest

from rollout.core.bucketing import bucket
from tests.e2e.processes import (
    Serve,
    command_line,
    descendants,
    gone,
    group_members,
    http,
    rollout_cli,
)
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]
KEY = "PROMPT_IMPROVER_ENABLED"
READ_TOKEN = "read-token-0123456789abcdef"


@pytest.mark.slow
def test_serve_end_to_end(data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    env["ROLLOUT_DATA_DIR"] = str(data_dir)
    serve = Serve(data_dir, {**env, "ROLLOUT_READ_TOKENS": f"reader:{READ_TOKEN}"})
    base = serve.base
    try:
        serve.wait_ready()

        # -- the admin token serve made, private to its owner ---------------------------------
        token_file = data_dir / "admin-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        admin = token_file.read_text().strip()
        assert str(token_file) in serve.log()  # serve told the operator where it is
        assert admin not in serve.log()  # ... without printing the token itself
        assert f"Dashboard: {base}/" in serve.log()  # what `make run` shows

        # -- HTTP: the reference plan from config/flags.toml, then the moves ------------------
        plan = tomllib.loads((ROOT / "config" / "flags.toml").read_text())["flags"][KEY]
        created = http(base, "POST", "/api/v1/flags", admin, {"key": KEY, **plan})
        assert created.status == 201, created.body
        assert created.body["state"] == "draft"
        assert created.body["percent"] == 0
        assert [s["percent"] for s in created.body["stages"]] == [10, 50, 100]

        advanced = http(base, "POST", f"/api/v1/flags/{KEY}/advance", admin, {"reason": "go"})
        assert advanced.status == 200, advanced.body
        assert (advanced.body["state"], advanced.body["stage"], advanced.body["percent"]) == (
            "rolling",
            0,
            10,
        )

        got = http(base, "GET", f"/api/v1/flags/{KEY}", admin)
        assert got.status == 200
        etag = got.headers["ETag"]
        assert etag == f'"{got.body["version"]}"'
        stale = http(
            base,
            "PATCH",
            f"/api/v1/flags/{KEY}",
            admin,
            {"description": "stale"},
            {"If-Match": f'"{got.body["version"] - 1}"'},
        )
        assert stale.status == 412, stale.body
        patched = http(
            base,
            "PATCH",
            f"/api/v1/flags/{KEY}",
            admin,
            {"description": "prompt improver, e2e"},
            {"If-Match": etag},
        )
        assert patched.status == 200, patched.body
        assert patched.headers["ETag"] != etag

        inside = next(f"u{i}" for i in range(10_000) if bucket(KEY, f"u{i}") < 1000)
        outside = next(f"u{i}" for i in range(10_000) if bucket(KEY, f"u{i}") >= 1000)
        for user, enabled, reason in (
            ("qa-alice", True, "allowed"),
            (inside, True, "in_cohort"),
            (outside, False, "out_of_cohort"),
        ):
            answer = http(base, "GET", f"/api/v1/flags/{KEY}/evaluate?user={user}", admin)
            assert answer.status == 200
            assert answer.body == {
                "enabled": enabled,
                "reason": reason,
                "bucket": bucket(KEY, user),
            }

        killed = http(base, "POST", f"/api/v1/flags/{KEY}/kill", admin, {"reason": "e2e drill"})
        assert killed.status == 200, killed.body
        assert killed.body["state"] == "killed"
        assert killed.body["kill"]["reason"] == "e2e drill"
        again = http(base, "POST", f"/api/v1/flags/{KEY}/kill", admin, {"reason": "twice"})
        assert again.status == 200 and again.body["version"] == killed.body["version"]
        answer = http(base, "GET", f"/api/v1/flags/{KEY}/evaluate?user=qa-alice", admin)
        assert answer.body["enabled"] is False and answer.body["reason"] == "killed"

        # -- the CLI, on the same embedded server (found through ROLLOUT_DATA_DIR) -----------
        shown = rollout_cli(env, "--json", "show", KEY)
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["state"] == "killed"

        revived = http(base, "POST", f"/api/v1/flags/{KEY}/revive", admin, {})
        assert revived.status == 200, revived.body
        assert (revived.body["state"], revived.body["stage"], revived.body["percent"]) == (
            "rolling",
            0,
            10,
        )
        checked = rollout_cli(env, "--json", "check", KEY, inside)
        assert checked.returncode == 0, checked.stderr
        assert json.loads(checked.stdout) == {
            "enabled": True,
            "reason": "in_cohort",
            "bucket": bucket(KEY, inside),
        }
        shown = rollout_cli(env, "--json", "show", KEY)
        assert json.loads(shown.stdout)["version"] == revived.body["version"]

        audit = http(base, "GET", f"/api/v1/audit?flag={KEY}", admin)
        assert audit.status == 200
        entries = audit.body["entries"]
        assert [e["action"] for e in reversed(entries)] == [
            "create",
            "advance",
            "update",
            "kill",
            "revive",
        ]
        assert {e["actor"] for e in entries} == {"admin"}  # the token's name from serve
        assert next(e for e in entries if e["action"] == "kill")["reason"] == "e2e drill"

        # -- a read token reads, and may not write ---------------------------------------------
        assert http(base, "GET", f"/api/v1/flags/{KEY}", READ_TOKEN).status == 200
        refused = http(base, "POST", f"/api/v1/flags/{KEY}/kill", READ_TOKEN, {"reason": "no"})
        assert refused.status == 403
        assert refused.body["error"]["code"]
        assert http(base, "GET", f"/api/v1/flags/{KEY}").status == 401
        assert http(base, "GET", f"/api/v1/flags/{KEY}", admin).body["state"] == "rolling"

        # -- SIGTERM: serve exits 0 and takes gunicorn and the controller with it ------------
        children = descendants(serve.pid)
        embedded = json.loads(rollout_cli(env, "--json", "embedded", "status").stdout)
        assert embedded["running"]
        redis_pid = embedded["pid"]
        workers = children - {redis_pid}
        # Each by its command line: gunicorn's master and its one worker (Serve passes
        # --workers 1), the controller and the notifier; nothing else.
        argvs = [command_line(pid) or ["(exited)"] for pid in workers]
        roles = sorted("gunicorn" if "gunicorn" in argv else argv[-1] for argv in argvs)
        assert roles == ["controller", "gunicorn", "gunicorn", "notifier"], roles
        assert serve.stop() == 0, serve.log()
        assert wait_until(lambda: all(gone(pid) for pid in workers), timeout=5)
        assert wait_until(lambda: not group_members(serve.pid), timeout=5)
        # The embedded server outlives serve by design (DESIGN §5); the CLI stops it.
        assert not gone(redis_pid)
        stopped = rollout_cli(env, "--json", "embedded", "stop")
        assert stopped.returncode == 0, stopped.stderr
        assert json.loads(stopped.stdout)["stopped"] is True
        assert wait_until(lambda: gone(redis_pid), timeout=5)
    finally:
        serve.cleanup()
        rollout_cli(env, "embedded", "stop")
