"""A real ``rollout serve`` with SDK traffic flowing, and Debian's Chromium driven by Playwright.

Shared by the browser tests and ``bench/dashboard.py``. Playwright's own browser download is
not reachable here, so the browser is ``/usr/bin/chromium`` (the Makefile installs it as root).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rollout import RolloutClient
from rollout.storage.redis_process import RedisProcess, free_port

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ADMIN_TOKEN = "admin-token-browser-0123456789"
READ_TOKEN = "read-token-browser-0123456789"
START_TIMEOUT = 30.0  # imports + gunicorn boot on a loaded 2-core box


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"browser tests skipped: {CHROMIUM} is missing (make test installs it as root)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "browser tests skipped: the playwright package is missing (pip install -e .[dev])"
    return None


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class Stack:
    base: str
    redis_url: str
    env: dict[str, str]
    log: Path
    traffic: Traffic | None = None

    def http(
        self, method: str, path: str, body: Any = None, token: str | None = ADMIN_TOKEN
    ) -> Reply:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, raw, headers = response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as error:
            status, raw, headers = error.code, error.read(), dict(error.headers)
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        return Reply(status, headers, parsed)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "rollout", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def create(self, key: str, **plan: Any) -> dict[str, Any]:
        created = self.http("POST", "/api/v1/flags", {"key": key, **plan})
        assert created.status == 201, created.body
        return created.body  # type: ignore[no-any-return]


@dataclass
class Traffic:
    """SDK clients recording outcomes for some flags, in a thread, until stopped.

    ``treatment_error_rate``: the users who get the treatment fail this often instead (a flag
    that is worse than its control, which is what makes a gate read fail)."""

    client: RolloutClient
    keys: list[str]
    error_rate: float = 0.02
    treatment_error_rate: float | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> Traffic:
        self.thread = threading.Thread(target=self._run, name="sdk-traffic", daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        rng = random.Random(7)
        flags = [self.client.flag(key) for key in self.keys]
        while not self.stop.is_set():
            for flag in flags:
                for _ in range(10):
                    user = f"user-{rng.randrange(5000)}"
                    treated = flag.is_enabled(user)
                    worse = treated and self.treatment_error_rate is not None
                    rate = self.treatment_error_rate if worse else self.error_rate
                    ok = rng.random() >= rate
                    latency = rng.lognormvariate(3.0, 0.4)
                    flag.record(user, ok=ok, duration_ms=latency, error_type=None if ok else "E")
            self.stop.wait(0.05)

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(5)
        self.client.close()


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/readyz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def serve(
    directory: Path, *, extra_env: dict[str, str] | None = None, controller: bool = True
) -> Iterator[Stack]:
    """A real redis-server and ``rollout serve`` (gunicorn + controller) on free ports."""
    redis = RedisProcess(directory / "redis", port=free_port())
    redis.start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    env.update(
        ROLLOUT_REDIS_URL=redis.url,
        ROLLOUT_DATA_DIR=str(directory / "data"),
        ROLLOUT_ADMIN_TOKENS=f"admin:{ADMIN_TOKEN}",
        ROLLOUT_READ_TOKENS=f"viewer:{READ_TOKEN}",
        **(extra_env or {}),
    )
    log = directory / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "rollout", "serve", "--port", str(port), "--workers", "1",
             "--threads", "4", *([] if controller else ["--no-controller"])],
            env=env,
            cwd=directory,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    stack = Stack(base=f"http://127.0.0.1:{port}", redis_url=redis.url, env=env, log=log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _ready(stack.base):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"rollout serve did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield stack
    finally:
        if stack.traffic is not None:
            stack.traffic.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        redis.stop()


def start_traffic(
    stack: Stack,
    keys: list[str],
    error_rate: float = 0.02,
    treatment_error_rate: float | None = None,
) -> Traffic:
    client = RolloutClient(stack.redis_url, flush_interval=0.2, environ={})
    stack.traffic = Traffic(client, keys, error_rate, treatment_error_rate).start()
    return stack.traffic


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def sign_in(page: Any, base: str, token: str, path: str = "/") -> None:
    page.goto(base + path)
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in as").wait_for()
