"""Cost of ``flag.observe(user, name, value)`` beyond a plain function call (issue 10).

Baseline (same run): a plain Python function of the same three arguments that does nothing,
over the same users and values. The figure is observe()'s extra cost per call, amortized over a
run with the background flusher working (it shares the GIL), so taking the moments, merging them
and the Redis script are paid inside the measurement. Target: at most 1 µs per call.

    .venv/bin/python bench/observe.py
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._server import bench_server
from rollout import RolloutClient

USERS = [f"user-{i}" for i in range(200_000)]
VALUES = [random.Random(1).gauss(1.0, 0.5) for _ in USERS]
ROUNDS = 5
CHUNK = 20_000  # rounds alternate between the loops in chunks, so machine noise hits both


def plain(user: object, name: str, value: float) -> None:
    return None


def best_ns(loops: dict[str, object]) -> dict[str, float]:
    """Best ns per call of each loop, the loops interleaved chunk by chunk over ROUNDS passes."""
    best = dict.fromkeys(loops, float("inf"))
    for _ in range(ROUNDS):
        for start_at in range(0, len(USERS), CHUNK):
            users = USERS[start_at : start_at + CHUNK]
            values = VALUES[start_at : start_at + CHUNK]
            for name, fn in loops.items():
                start = time.perf_counter_ns()
                fn(users, values)  # type: ignore[operator]
                best[name] = min(best[name], (time.perf_counter_ns() - start) / len(users))
    return best


def main() -> int:
    with bench_server() as (server, services):
        services.flags.create("PROMPT_IMPROVER_ENABLED", actor="bench")
        services.flags.set_percent("PROMPT_IMPROVER_ENABLED", 50, actor="bench")
        with RolloutClient(server.url, environ={}, flush_interval=0.2) as client:
            flag = client.flag("PROMPT_IMPROVER_ENABLED")
            observe = flag.observe

            def baseline(users: list[str], values: list[float]) -> None:
                for user, value in zip(users, values, strict=True):
                    plain(user, "improvement_delta", value)

            def observed(users: list[str], values: list[float]) -> None:
                for user, value in zip(users, values, strict=True):
                    observe(user, "improvement_delta", value)

            best = best_ns({"plain": baseline, "observe": observed})
            client.flush()
            dropped = client._recorder.values.dropped
        arms = services.gates.evidence(services.flags.get("PROMPT_IMPROVER_ENABLED")).stage
    plain_ns, observe_ns = best["plain"], best["observe"]
    extra = observe_ns - plain_ns
    print(f"plain function call (3 arguments)   {plain_ns:7.1f} ns/call (baseline)")
    print(f"flag.observe(user, name, value)     {observe_ns:7.1f} ns/call -> {extra:.1f} ns beyond")
    stored = sum(
        arm.values["improvement_delta"].n
        for arm in (arms.treatment, arms.control)
        if "improvement_delta" in arm.values
    )
    print(f"observations stored: {stored:,} (dropped {dropped})")
    ok = extra <= 1000 and stored == ROUNDS * len(USERS)
    print(
        f"target: observe extra <= 1000 ns, every observation stored -> {'PASS' if ok else 'MISS'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
