"""Time from "the treatment's min_samples outcomes are recorded" to "every SDK answers off".

Real redis-server, the real controller loop at a 0.2 s tick, four SDK clients flushing every
1 s (the defaults an application would run). Traffic keeps flowing at about 4,000 users/s with a
true treatment error rate of 20% and control 1%, as it would in production. Baseline in the
same run: the flush interval plus one tick, the wait the design itself imposes.
Target (issue 4): at most 2 s. Anchor: Flagger's defaults roll back after 60 s.

    .venv/bin/python bench/autokill.py
"""

from __future__ import annotations

import random
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._server import bench_server
from rollout import RolloutClient
from rollout.wiring import build_controller

RUNS = 10
CLIENTS = 4
FLUSH = 1.0
TICK = 0.2
MIN_SAMPLES = 100
GATES = [
    {"metric": "error_rate", "warn": 0.05, "critical": 0.10, "min_samples": MIN_SAMPLES},
]


def one_run(server_url: str, services: object, run: int, rng: random.Random) -> float:
    key = f"AUTOKILL_{run}"
    flags = services.flags  # type: ignore[attr-defined]
    flags.create(key, actor="bench", gates=GATES, stages=[{"percent": 10, "bake": "1h"}])
    flags.advance(key, actor="bench")
    clients = [RolloutClient(server_url, flush_interval=FLUSH, environ={}) for _ in range(CLIENTS)]
    probes = [f"probe-{i}" for i in range(200)]
    try:
        handles = [c.flag(key) for c in clients]
        assert any(h.is_enabled(p) for h in handles for p in probes)
        treatment = 0
        start = None
        user = 0
        while True:
            for _ in range(40):
                user += 1
                handle = handles[user % CLIENTS]
                uid = f"r{run}-u{user}"
                on = handle.is_enabled(uid)
                failed = rng.random() < (0.20 if on else 0.01)
                handle.record(
                    uid, ok=not failed, duration_ms=20.0, error_type="Boom" if failed else None
                )
                if on:
                    treatment += 1
                    if treatment == MIN_SAMPLES:
                        start = time.perf_counter()
            if start is not None and not any(h.is_enabled(p) for h in handles for p in probes):
                return time.perf_counter() - start
            if start is not None and time.perf_counter() - start > 30:
                raise SystemExit(f"run {run}: not killed within 30 s")
            time.sleep(0.01)
    finally:
        for client in clients:
            client.close()


def main() -> int:
    rng = random.Random(42)
    with bench_server() as (server, services):
        controller = build_controller(services, interval=TICK)
        thread = threading.Thread(target=controller.run, daemon=True)
        thread.start()
        try:
            delays = [one_run(server.url, services, run, rng) for run in range(RUNS)]
        finally:
            controller.stop.set()
            thread.join(5)
    delays.sort()
    baseline = FLUSH + TICK
    p50, worst = statistics.median(delays), delays[-1]
    print(f"runs: {RUNS}, SDK clients per run: {CLIENTS}, flush {FLUSH}s, tick {TICK}s")
    print(f"min_samples recorded -> every SDK off: median {p50:.2f} s, max {worst:.2f} s")
    print(
        f"baseline (flush interval + one tick): {baseline:.2f} s; "
        f"ratio median/baseline {p50 / baseline:.2f}"
    )
    verdict = "PASS" if worst <= 2.0 else "MISS"
    print(f"target: at most 2 s (every run) -> {verdict}")
    return 0 if worst <= 2.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
