"""Real processes for the end-to-end tests: ``rollout serve`` under test, HTTP, and /proc.

``Serve`` starts ``rollout serve`` in a session of its own with its output in a file (a pipe
nobody reads would fill and block gunicorn), and its cleanup kills whatever is left of that
session, so a failed test never leaves a server behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollout.storage.redis_process import free_port
from tests.support import wait_until

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


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, pgrp) of a live process from /proc; None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after the last ")".
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[2])


def gone(pid: int) -> bool:
    # A zombie has exited; it only waits for a parent (maybe a non-reaping PID 1) to reap it.
    info = proc_stat(pid)
    return info is None or info[0] == "Z"


def command_line(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid in all_pids():
        info = proc_stat(pid)
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


def group_members(pgid: int) -> set[int]:
    members = set()
    for pid in all_pids():
        info = proc_stat(pid)
        if info is not None and info[2] == pgid and info[0] != "Z":
            members.add(pid)
    return members


def rollout_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rollout", *args],
        env=env,
        cwd=env["ROLLOUT_DATA_DIR"],
        capture_output=True,
        text=True,
        timeout=30,
    )


class Serve:
    """``rollout serve --port P --workers 1 [args]`` in ``data_dir``, with ``env`` as is."""

    def __init__(self, data_dir: Path, env: dict[str, str], *args: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / f"serve-{self.port}.log"
        command = ["serve", "--port", str(self.port), "--workers", "1", *args]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "rollout", *command],
                env=env,
                cwd=data_dir,  # no stray .env from the developer's working directory
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so cleanup can take all of it
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        def ready() -> bool:
            assert self.proc.poll() is None, f"serve exited early:\n{self.log()}"
            try:
                return http(self.base, "GET", "/readyz").status == 200
            except OSError:  # not listening yet
                return False

        assert wait_until(ready, timeout=timeout, interval=0.05), self.log()

    def children(self) -> dict[str, int]:
        """serve's own children by role: ``gunicorn`` (the master) and ``controller``."""
        found = {}
        for pid in all_pids():
            info = proc_stat(pid)
            if info is None or info[1] != self.pid or info[0] == "Z":
                continue
            argv = command_line(pid)
            if "gunicorn" in argv:
                found["gunicorn"] = pid
            elif argv[-1:] == ["controller"]:
                found["controller"] = pid
        return found

    def stop(self) -> int:
        """SIGTERM, as a process manager stops it; serve's exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=STOP_TIMEOUT)

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        else:
            # serve is gone; anything left in its group (a stray worker) goes too.
            for pid in group_members(self.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
