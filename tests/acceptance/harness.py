"""A small world for acceptance tests: a real redis-server, real SDK clients, a live controller."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rollout import RolloutClient
from rollout.controller.loop import Controller
from rollout.core.model import Flag
from rollout.services.container import Services
from rollout.storage.connection import client_for_url
from rollout.storage.redis_process import RedisProcess
from rollout.wiring import build_controller, build_services
from tests.conftest import make_settings
from tests.support import wait_until

KEY = "PROMPT_IMPROVER_ENABLED"
REFERENCE_GATES = [
    {"metric": "error_rate", "warn": 0.05, "critical": 0.10, "min_samples": 100, "window": "60s"},
    {"metric": "latency_ratio", "warn": 1.2, "critical": 1.5, "min_samples": 100, "window": "60s"},
    {"metric": "memory_mb", "warn": 75, "critical": 100},
]
PLAN = [
    {"percent": 10, "bake": "0s", "min_samples": 300},
    {"percent": 50, "bake": "0s", "min_samples": 300},
    {"percent": 100, "bake": "0s", "min_samples": 300},
]


class Memory:
    """A process's memory probe that a test can make grow."""

    def __init__(self) -> None:
        self.mb = 200.0

    def __call__(self) -> float:
        return self.mb


@dataclass
class World:
    services: Services
    controller: Controller
    clients: list[RolloutClient]
    memory: list[Memory]
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    next_user: int = 0

    def flag(self) -> Flag:
        return self.services.flags.get(KEY)

    def traffic(
        self,
        n: int,
        *,
        t_err: float = 0.01,
        c_err: float = 0.01,
        t_ms: float = 20.0,
        c_ms: float = 20.0,
        values: tuple[float, float] | None = None,
        value_sd: float = 0.5,
        control_records: bool = True,
    ) -> None:
        """``n`` users through the SDK, spread over the clients, then a flush of each.

        ``values`` = (treatment mean, control mean) of ``improvement_delta``, observed with
        each outcome (Normal, ``value_sd``). ``control_records = False`` instruments only the
        new path: control users are asked ``is_enabled`` but record nothing.
        """
        for _ in range(n):
            user = f"user-{self.next_user}"
            self.next_user += 1
            handle = self.clients[self.next_user % len(self.clients)].flag(KEY)
            on = handle.is_enabled(user)
            if not on and not control_records:
                continue
            failed = self.rng.random() < (t_err if on else c_err)
            observed = None
            if values is not None:
                mean = values[0] if on else values[1]
                observed = {"improvement_delta": self.rng.gauss(mean, value_sd)}
            handle.record(
                user,
                ok=not failed,
                duration_ms=(t_ms if on else c_ms) * self.rng.uniform(0.9, 1.1),
                error_type="Boom" if failed else None,
                values=observed,
            )
        for client in self.clients:
            client.flush()

    def ticks(self) -> int:
        return self.controller.counters.read().get("ticks", 0)

    def settle(self, ticks: int = 3) -> None:
        """Let the controller read what was just flushed."""
        start = self.ticks()
        assert wait_until(lambda: self.ticks() >= start + ticks, timeout=10)

    def everyone_off(self) -> bool:
        return not any(
            c.flag(KEY).is_enabled(f"user-{i}") for c in self.clients for i in range(500)
        ) and not any(c.flag(KEY).is_enabled("qa-alice") for c in self.clients)


@contextmanager
def world(server: RedisProcess, *, clients: int = 3, **config: Any) -> Iterator[World]:
    redis = client_for_url(server.url)
    services = build_services(make_settings(redis_url=server.url), redis_client=redis)
    body: dict[str, Any] = {"stages": PLAN, "gates": REFERENCE_GATES, "auto_advance": True}
    body.update(config)
    services.flags.create(KEY, actor="test", allow=["qa-alice"], **body)
    services.flags.advance(KEY, actor="test")
    controller = build_controller(services, interval=0.05)
    memories = [Memory() for _ in range(clients)]
    sdks = [
        RolloutClient(server.url, flush_interval=60, memory_probe=m, environ={}) for m in memories
    ]
    thread = threading.Thread(target=controller.run, daemon=True)
    thread.start()
    try:
        yield World(services, controller, sdks, memories)
    finally:
        controller.stop.set()
        thread.join(5)
        for sdk in sdks:
            sdk.close()
        redis.close()


def run_until(
    world: World, done: Any, *, timeout: float = 60.0, users: int = 500, **traffic: Any
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        world.traffic(users, **traffic)
        world.settle(2)
    return bool(done())
