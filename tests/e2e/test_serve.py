"""``rollout serve`` end to end: a real gunicorn, controller and embedded Redis in subprocesses.

The one test here is what an operator does on a fresh machine: start serve with nothing
configured, find the admin token it made, drive a flag over HTTP and through the CLI (which
finds the same embedded server through ROLLOUT_DATA_DIR), then stop serve with SIGTERM and check
that it takes its children with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rollout.core.bucketing import bucket
from rollout.storage.redis_process import free_port
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]
KEY = "PROMPT_IMPROVER_ENABLED"
READ_TOKEN = "read-token-0123456789abcdef"
START_TIMEOUT = 20.0  # imports + embedded redis-server + gunicorn boot, on a loaded 2-core box
STOP_TIMEOUT = 15.0  # serve gives gunicorn --graceful-timeout 10 before it kills


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


def http(
    base: str,
    method: str,
    path: str,
    token: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """One request; an HTTP error status is an answer to check, not an exception."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw, got = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        status, raw, got = error.code, error.read(), dict(error.headers)
    return Reply(status, got, json.loads(raw) if raw else None)


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, pgrp) of a live process from /proc; None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after the last ")".
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[2])


def _gone(pid: int) -> bool:
    # A zombie has exited; it only waits for a parent (maybe a non-reaping PID 1) to reap it.
    info = _proc_stat(pid)
    return info is None or info[0] == "Z"


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        info = _proc_stat(pid)
        if info is not None:
            children.setdefault(info[1], []).append(pid)
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _group_members(pgid: int) -> set[int]:
    members = set()
    for pid in _all_pids():
        info = _proc_stat(pid)
        if info is not None and info[2] == pgid and info[0] != "Z":
            members.add(pid)
    return members


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rollout", *args],
        env=env,
        cwd=env["ROLLOUT_DATA_DIR"],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Short on purpose: the embedded server's unix socket lives here (sun_path is 108 bytes).
    path = Path(tempfile.mkdtemp(prefix="r-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_serve_end_to_end(data_dir: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    env["ROLLOUT_DATA_DIR"] = str(data_dir)
    serve_env = {**env, "ROLLOUT_READ_TOKENS": f"reader:{READ_TOKEN}"}
    # A file, not a pipe: nobody reads gunicorn's access log while the test runs, and a full
    # pipe would block the workers.
    log_path = data_dir / "serve.log"
    with open(log_path, "wb") as log:
        serve = subprocess.Popen(
            [sys.executable, "-m", "rollout", "serve", "--port", str(port), "--workers", "1"],
            env=serve_env,
            cwd=data_dir,  # no stray .env from the developer's working directory
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so cleanup can take all of it
        )
    try:

        def ready() -> bool:
            assert serve.poll() is None, f"serve exited early:\n{log_path.read_text()}"
            try:
                return http(base, "GET", "/readyz").status == 200
            except OSError:  # not listening yet
                return False

        assert wait_until(ready, timeout=START_TIMEOUT, interval=0.05), log_path.read_text()

        # -- the admin token serve made, private to its owner ---------------------------------
        token_file = data_dir / "admin-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        admin = token_file.read_text().strip()
        assert str(token_file) in log_path.read_text()  # serve told the operator where it is
        assert admin not in log_path.read_text()  # ... without printing the token itself

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
        shown = _cli(env, "--json", "show", KEY)
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["state"] == "killed"

        revived = http(base, "POST", f"/api/v1/flags/{KEY}/revive", admin, {})
        assert revived.status == 200, revived.body
        assert (revived.body["state"], revived.body["stage"], revived.body["percent"]) == (
            "rolling",
            0,
            10,
        )
        checked = _cli(env, "--json", "check", KEY, inside)
        assert checked.returncode == 0, checked.stderr
        assert json.loads(checked.stdout) == {
            "enabled": True,
            "reason": "in_cohort",
            "bucket": bucket(KEY, inside),
        }
        shown = _cli(env, "--json", "show", KEY)
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
        children = _descendants(serve.pid)
        embedded = json.loads(_cli(env, "--json", "embedded", "status").stdout)
        assert embedded["running"]
        redis_pid = embedded["pid"]
        workers = children - {redis_pid}
        assert len(workers) >= 3, children  # gunicorn master, one worker, the controller
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=STOP_TIMEOUT) == 0, log_path.read_text()
        assert wait_until(lambda: all(_gone(pid) for pid in workers), timeout=5)
        assert wait_until(lambda: not _group_members(serve.pid), timeout=5)
        # The embedded server outlives serve by design (DESIGN §5); the CLI stops it.
        assert not _gone(redis_pid)
        stopped = _cli(env, "--json", "embedded", "stop")
        assert stopped.returncode == 0, stopped.stderr
        assert json.loads(stopped.stdout)["stopped"] is True
        assert wait_until(lambda: _gone(redis_pid), timeout=5)
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait(timeout=10)
        else:
            # serve is gone; anything left in its group (a stray worker) goes too.
            for pid in _group_members(serve.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        _cli(env, "embedded", "stop")
