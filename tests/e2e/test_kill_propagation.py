"""Emergency disable across processes (issue 3 item 5): one kill over HTTP, every SDK turns off.

The API runs in this process behind a real HTTP server (werkzeug's, on a thread); the SDKs are
separate Python processes on the same Redis. Nothing here is in-process shortcutting: the kill
goes over a socket to the API, through the service's CAS write and the change channel, to the
background syncer of each SDK process.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import IO

import pytest
from werkzeug.serving import make_server

from rollout.api.app import create_app
from rollout.storage.redis_process import RedisProcess
from rollout.wiring import build_services
from tests.conftest import make_settings

KEY = "KILL_PROPAGATION"
TOKEN = "admin-token-0123456789abcdef"
PROCESSES = 4
PROBES = 50
READY_TIMEOUT = 30.0  # four interpreters importing at once on two cores
OFF_TIMEOUT = 10.0  # generous, and still below the SDK's 30 s resync: only the change
# channel can have carried the kill in time (bench/propagation.py measures how fast it is).

# One SDK process: "ready" once every probe user is on, "off" as soon as every one is off.
# It polls is_enabled (what application code does), at 0.5 ms so 4 pollers leave CPU to the rest.
SDK_SCRIPT = """
import sys, time
from rollout import RolloutClient

url, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
users = [f"probe-{i}" for i in range(n)]
client = RolloutClient(url, environ={})
flag = client.flag(key)
deadline = time.monotonic() + float(sys.argv[4])
try:
    while not all(flag.is_enabled(u) for u in users):
        if time.monotonic() > deadline:
            sys.exit("never on")
        time.sleep(0.0005)
    print("ready", flush=True)
    while any(flag.is_enabled(u) for u in users):
        if time.monotonic() > deadline:
            sys.exit("never off")
        time.sleep(0.0005)
    print("off", flush=True)
finally:
    client.close()
"""


def _send(base: str, path: str, body: object, method: str = "POST") -> dict[str, object]:
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def _pump(stream: IO[str], index: int, lines: queue.Queue[tuple[int, str]]) -> None:
    # One reader thread per child: a blocking readline then never stalls the deadline below.
    for line in stream:
        lines.put((index, line.strip()))


def _expect(lines: queue.Queue[tuple[int, str]], word: str, timeout: float) -> None:
    """Every child says ``word`` within ``timeout`` (one shared deadline)."""
    deadline = time.monotonic() + timeout
    said: set[int] = set()
    while len(said) < PROCESSES:
        try:
            index, line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"only {sorted(said)} said {word!r} within {timeout}s") from None
        assert line == word, (index, line)
        said.add(index)


@pytest.fixture
def api(redis_server_flushed: RedisProcess) -> Iterator[str]:
    settings = make_settings(redis_url=redis_server_flushed.url, admin_tokens=f"admin:{TOKEN}")
    services = build_services(settings)
    app = create_app(services)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        services.close()


@pytest.mark.slow
def test_kill_over_http_turns_off_every_sdk_process(
    api: str, redis_server_flushed: RedisProcess
) -> None:
    _send(api, "/api/v1/flags", {"key": KEY})
    _send(api, f"/api/v1/flags/{KEY}/percentage", {"percent": 100}, method="PUT")
    lines: queue.Queue[tuple[int, str]] = queue.Queue()
    command = [sys.executable, "-c", SDK_SCRIPT, redis_server_flushed.url, KEY, str(PROBES)]
    sdks = [
        subprocess.Popen(
            [*command, str(READY_TIMEOUT + OFF_TIMEOUT)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(PROCESSES)
    ]
    try:
        for index, sdk in enumerate(sdks):
            assert sdk.stdout is not None
            threading.Thread(target=_pump, args=(sdk.stdout, index, lines), daemon=True).start()
        _expect(lines, "ready", READY_TIMEOUT)
        killed = _send(api, f"/api/v1/flags/{KEY}/kill", {"reason": "drill"})
        assert killed["state"] == "killed"
        _expect(lines, "off", OFF_TIMEOUT)
        assert all(sdk.wait(timeout=10) == 0 for sdk in sdks)
    finally:
        for sdk in sdks:
            if sdk.poll() is None:
                sdk.kill()
            sdk.wait(timeout=10)
