"""Notifications and triggers: delivery lag, and trigger POST -> every SDK off.

1. Delivery lag: from an audit entry (its stream id is Redis's clock, the same machine's) to
   the receiver's 2xx, through ``rollout notifier``'s real loop (``Notifier.run``: woken by
   the change channel, one delivery thread per destination) and real HTTP to a local
   ``http.server`` receiver. EVENTS writes spread over FLAGS flags, one every GAP seconds.
   Run twice: one healthy destination; then the same plus a second destination whose port
   refuses every connection (its retries must not delay the first). Target: p99 <= 1 s both.
2. Idle cost: the Redis commands a notifier sends, per second, with nothing to deliver (one
   destination), over IDLE_FLAGS new flags and the lag runs' ones, counted by the server (INFO
   commandstats) over IDLE_SECONDS once it has read every flag. No target; before/after in
   the README.
3. Trigger POST -> every SDK off: ``rollout serve`` (gunicorn), a trigger on the flag, SDKS
   SDK processes polling (bench/propagation.py's), then ``POST /hooks/triggers/{id}/{secret}``
   with an Alertmanager "firing" body; the figure is the last SDK's "off" minus the POST's
   start. Then a revive. Target: p99 <= 100 ms.

    .venv/bin/python bench/notify.py [--events N] [--runs N] [--sdks N] [--idle-seconds S]
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import socket
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._server import bench_server
from bench.api import running_serve
from bench.propagation import Api, Children, percentile
from rollout.core.destinations import Destination
from rollout.services.container import Services
from rollout.storage.redis_process import RedisProcess
from rollout.wiring import build_notifier

EVENTS = 300
FLAGS = 5
GAP = 0.02
RUNS = 50
SDKS = 8
IDLE_FLAGS = 100
IDLE_SECONDS = 20.0
TARGET_LAG_P99 = 1.0
TARGET_TRIGGER_P99_MS = 100.0
KEY = "PROMPT_IMPROVER_ENABLED"
FIRING = {
    "version": "4",
    "status": "firing",
    "alerts": [{"labels": {"alertname": "HighErrorRate"}, "annotations": {"summary": "5xx"}}],
}


class Receiver:
    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.arrivals.setdefault(self.headers["Rollout-Event-Id"], time.time())
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def lag_run(services: Services, events: int, with_dead: bool, tag: str) -> list[float]:
    receiver = Receiver()
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))  # bound, never listening: every connection is refused
    environ = {
        "LIVE_URL": receiver.url,
        "DEAD_URL": f"http://127.0.0.1:{refused.getsockname()[1]}/hook",
    }
    now = services.notify.server_time_ms()
    only = {"live": Destination("live", "LIVE_URL", created_at=now)}
    if with_dead:
        only["dead"] = Destination("dead", "DEAD_URL", created_at=now)
    notifier = build_notifier(services, environ=environ, only=only)
    thread = threading.Thread(target=notifier.run, daemon=True)
    thread.start()
    try:
        keys = [f"{tag}{i}" for i in range(FLAGS)]
        for key in keys:
            services.flags.create(key, actor="bench")
        for i in range(events - FLAGS):
            services.flags.update(keys[i % FLAGS], {"description": str(i)}, actor="bench")
            time.sleep(GAP)
        written = {
            f"{e['id']}.{e['flag']}": int(e["id"].split("-")[0]) / 1000
            for key in keys
            for e in services.flags.audit(key, limit=10_000)
        }
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not set(written) <= set(receiver.arrivals):
            time.sleep(0.05)
        missing = set(written) - set(receiver.arrivals)
        if missing:
            raise SystemExit(f"{len(missing)} events never arrived")
        return [receiver.arrivals[i] - at for i, at in written.items()]
    finally:
        notifier.stop.set()
        thread.join(10)
        receiver.close()
        refused.close()


def idle_run(server: RedisProcess, services: Services, flags: int, seconds: float) -> Counter[str]:
    """Commands the server ran while a notifier over ``flags`` flags had nothing to send."""
    receiver = Receiver()
    keys = [f"I{i}" for i in range(flags)]
    for key in keys:
        services.flags.create(key, actor="bench")
    # Newer than the flags' creates (by a millisecond: one in its very millisecond would be
    # sent), so there is nothing to send.
    created_at = services.notify.server_time_ms() + 1
    only = {"idle": Destination("idle", "IDLE_URL", created_at=created_at)}
    notifier = build_notifier(services, environ={"IDLE_URL": receiver.url}, only=only)
    thread = threading.Thread(target=notifier.run, daemon=True)
    thread.start()
    client = server.client()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            worker = notifier.workers.get("idle")
            if worker is not None and set(keys) <= set(worker.queues):
                break
            time.sleep(0.05)
        else:
            raise SystemExit("the notifier never read every flag")
        time.sleep(1.0)  # its first reads done
        client.config_resetstat()
        time.sleep(seconds)
        stats = client.info("commandstats")
        if receiver.arrivals:
            raise SystemExit(f"an idle notifier delivered {len(receiver.arrivals)} events")
        return Counter(
            {
                name.removeprefix("cmdstat_"): int(row["calls"])
                for name, row in stats.items()
                if not name.startswith(("cmdstat_info", "cmdstat_config"))
            }
        )
    finally:
        notifier.stop.set()
        thread.join(10)
        receiver.close()
        client.close()


def trigger_runs(server_url: str, services: Services, runs: int, sdks: int) -> list[float]:
    services.flags.create(KEY, actor="bench")
    services.flags.set_percent(KEY, 100, actor="bench")
    path = services.triggers.create(KEY, actor="bench", name="bench").url
    body = json.dumps(FIRING)
    delays = []
    with running_serve(server_url, workers=2, threads=4) as (base, _pid):
        api = Api(base)
        host, _, port = base.removeprefix("http://").partition(":")
        hook = http.client.HTTPConnection(host, int(port), timeout=10)
        children = Children(server_url, sdks, runs + 3)
        try:
            children.collect("on", 120)
            for run in range(runs + 3):
                time.sleep(0.15)  # the trigger's rate limit is 10 a second
                start = time.monotonic_ns()
                hook.request("POST", path, body, {"Content-Type": "application/json"})
                answer = json.loads(hook.getresponse().read())
                assert answer["killed"] is True, answer
                last_off = max(children.collect("off", 10))
                if run >= 3:
                    delays.append((last_off - start) / 1e6)
                api.post(f"/api/v1/flags/{KEY}/revive", {})
                if run + 1 < runs + 3:
                    children.collect("on", 10)
        finally:
            children.stop()
    return delays


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--sdks", type=int, default=SDKS)
    parser.add_argument("--idle-seconds", type=float, default=IDLE_SECONDS)
    args = parser.parse_args()
    logging.getLogger("rollout.notifier").setLevel(logging.ERROR)  # the refusals are expected
    ok = True
    with bench_server() as (server, services):
        for label, dead, tag in (
            ("healthy", False, "H"),
            ("with a refusing 2nd destination", True, "D"),
        ):
            lags = lag_run(services, args.events, dead, tag)
            p50, p99 = percentile(lags, 0.5), percentile(lags, 0.99)
            met = p99 <= TARGET_LAG_P99
            ok &= met
            print(
                f"delivery lag, {label}: {len(lags)} events over {FLAGS} flags, one per "
                f"{GAP * 1000:g} ms: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
                f"max {max(lags) * 1000:.0f} ms (target p99 <= {TARGET_LAG_P99:g} s: "
                f"{'met' if met else 'MISSED'})"
            )
        calls = idle_run(server, services, IDLE_FLAGS, args.idle_seconds)
        per_second = {name: n / args.idle_seconds for name, n in calls.most_common()}
        shown = ", ".join(f"{name} {rate:.1f}" for name, rate in per_second.items())
        present = len(services.flags.list_flags())  # the lag runs' flags are there too
        print(
            f"idle notifier, {present} flags, one destination, nothing to send: "
            f"{sum(per_second.values()):.1f} Redis commands/s, of which XRANGE "
            f"{per_second.get('xrange', 0.0):.1f}/s ({shown})"
        )
        delays = trigger_runs(server.url, services, args.runs, args.sdks)
        p50, p99 = percentile(delays, 0.5), percentile(delays, 0.99)
        met = p99 <= TARGET_TRIGGER_P99_MS
        ok &= met
        print(
            f"trigger POST (Alertmanager firing) -> {args.sdks} SDK processes off, {len(delays)} "
            f"runs via rollout serve: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(delays):.1f} ms "
            f"(target p99 <= {TARGET_TRIGGER_P99_MS:g} ms: {'met' if met else 'MISSED'})"
        )
        services.close()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
