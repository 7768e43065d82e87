"""Cost of ``flag.track(user)`` beyond the body it wraps, against an empty context manager.

Baseline (same run): ``with Empty() as x: pass`` — a class-based context manager that does
nothing — over the same users. The figure is track()'s extra cost per call, amortized over a run
with the background flusher working (it shares the GIL), so buffering, folding and the Redis
pipeline are all paid inside the measurement. Target (issue 4): at most 1 µs per call.
Also: is_enabled with exposure counting against the floor of bench/eval.py (target ≤ 1.5x).

    .venv/bin/python bench/track.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import mmh3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._server import bench_server
from rollout import RolloutClient

USERS = [f"user-{i}" for i in range(200_000)]
ROUNDS = 5
CHUNK = 20_000  # rounds alternate between the loops in chunks, so machine noise hits both


class Empty:
    def __enter__(self) -> bool:
        return True

    def __exit__(self, *exc: object) -> None:
        return None


def best_ns(loops: dict[str, object]) -> dict[str, float]:
    """Best ns per call of each loop, the loops interleaved chunk by chunk over ROUNDS passes."""
    best = dict.fromkeys(loops, float("inf"))
    for _ in range(ROUNDS):
        for start_at in range(0, len(USERS), CHUNK):
            chunk = USERS[start_at : start_at + CHUNK]
            for name, fn in loops.items():
                start = time.perf_counter_ns()
                fn(chunk)  # type: ignore[operator]
                best[name] = min(best[name], (time.perf_counter_ns() - start) / len(chunk))
    return best


def main() -> int:
    with bench_server() as (server, services):
        services.flags.create("PROMPT_IMPROVER_ENABLED", actor="bench")
        services.flags.set_percent("PROMPT_IMPROVER_ENABLED", 50, actor="bench")
        with RolloutClient(server.url, environ={}, metrics_buffer=5_000_000) as client:
            flag = client.flag("PROMPT_IMPROVER_ENABLED")

            def empty(users: list[str]) -> None:
                for _user in users:
                    with Empty() as _on:
                        pass

            def tracked(users: list[str]) -> None:
                for user in users:
                    with flag.track(user) as _on:
                        pass

            table = {"PROMPT_IMPROVER_ENABLED": ("PROMPT_IMPROVER_ENABLED", 5000)}

            def floor_call(user: str) -> bool:
                # The floor of bench/eval.py: a plain function, called once per user.
                salt, bp = table["PROMPT_IMPROVER_ENABLED"]
                return mmh3.hash(f"{salt}:{user}", 0, False) % 10_000 < bp

            def floor(users: list[str]) -> None:
                for user in users:
                    floor_call(user)

            def exposures(users: list[str]) -> None:
                for user in users:
                    flag.is_enabled(user)

            first = best_ns({"empty": empty, "track": tracked})
            empty_ns, track_ns = first["empty"], first["track"]
            client.flush()
            second = best_ns({"floor": floor, "is_enabled": exposures})
            floor_ns, is_enabled_ns = second["floor"], second["is_enabled"]
            dropped = client._recorder.dropped
        stats = services.gates.report(services.flags.get("PROMPT_IMPROVER_ENABLED"))["arms"]
    extra = track_ns - empty_ns
    print(f"empty class-based context manager   {empty_ns:7.1f} ns/call (baseline)")
    print(
        f"flag.track(user)                    {track_ns:7.1f} ns/call "
        f"-> {extra:.1f} ns beyond the baseline"
    )
    print(f"floor (dict + mmh3 + compare)       {floor_ns:7.1f} ns/call")
    print(
        f"is_enabled with exposure counting   {is_enabled_ns:7.1f} ns/call "
        f"ratio {is_enabled_ns / floor_ns:.2f}x"
    )
    samples = stats["treatment"]["samples"] + stats["control"]["samples"]
    print(
        f"outcomes stored: {samples:,} (dropped {dropped}); exposures stored: "
        f"{stats['treatment']['exposures'] + stats['control']['exposures']:,}"
    )
    ok = extra <= 1000 and is_enabled_ns / floor_ns <= 1.5
    print(
        f"targets: track extra <= 1000 ns, is_enabled <= 1.5x floor -> {'PASS' if ok else 'MISS'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
