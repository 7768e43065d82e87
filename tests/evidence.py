"""Real evidence for gate tests: outcomes recorded by a real SDK client and flushed into Redis.

Gate tests use these instead of stubbing ``GateService``: the path a gate reading takes in
production (the SDK's arms, the flush pipeline, the metrics keys, the store's read, the pure
gate math) is the path the test takes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rollout import RolloutClient
from rollout.core.bucketing import bucket
from rollout.core.model import Flag
from tests.support import wait_until

# A gate that a clear treatment regression fails after a few dozen samples.
ERROR_GATE: dict[str, Any] = {
    "metric": "error_rate",
    "warn": 0.05,
    "critical": 0.10,
    "min_samples": 20,
    "window": "60s",
}


def users(flag: Flag, *, treatment: bool, n: int, start: int = 0) -> list[str]:
    """``n`` user ids the bucket puts in (``treatment``) or out of the flag's cohort."""
    found: list[str] = []
    i = start
    while len(found) < n:
        user = f"user-{i}"
        if (bucket(flag.salt, user) < flag.percent_bp) == treatment:
            found.append(user)
        i += 1
    return found


class Memory:
    """A process's memory probe whose reading a test sets (MB)."""

    def __init__(self, mb: float = 200.0) -> None:
        self.mb = mb

    def __call__(self) -> float:
        return self.mb


@contextmanager
def sdk(
    url: str, flag: Flag, clock: Callable[[], float], **options: Any
) -> Iterator[RolloutClient]:
    """A real client that holds ``flag`` (this version or newer); flushes only when told."""
    client = RolloutClient(url, flush_interval=60, environ={}, clock=clock, **options)
    try:
        assert wait_until(
            lambda: (
                (held := client.known_flags().get(flag.key)) is not None
                and held.version >= flag.version
            )
        ), "the SDK never loaded the flag"
        yield client
    finally:
        client.close()


def record(
    client: RolloutClient,
    flag: Flag,
    *,
    treatment_errors: int = 0,
    treatment_ok: int = 0,
    control_errors: int = 0,
    control_ok: int = 0,
    duration_ms: float = 20.0,
) -> None:
    """Record outcomes for users of each arm through ``flag.record``, then flush them."""
    handle = client.flag(flag.key)
    plan = [
        (True, False, treatment_errors),
        (True, True, treatment_ok),
        (False, False, control_errors),
        (False, True, control_ok),
    ]
    for treatment, ok, n in plan:
        for user in users(flag, treatment=treatment, n=n):
            handle.record(user, ok=ok, duration_ms=duration_ms, error_type=None if ok else "Boom")
    client.flush()


def flush_failing_evidence(url: str, flag: Flag, clock: Callable[[], float]) -> None:
    """Every treatment outcome an error, control healthy: ``ERROR_GATE`` reads ``fail``."""
    with sdk(url, flag, clock) as client:
        record(client, flag, treatment_errors=60, control_ok=300)
