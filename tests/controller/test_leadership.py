"""The leader lock under loss: a tick that loses it stops acting, a stale holder stays out.

Real Redis throughout: renew and release are owner-checked Lua scripts, and that check is the
promise under test. Time for the lock's renewals is an injected monotonic clock, so "this tick
ran longer than a third of the TTL" is a step of the test, not a sleep.
"""

from __future__ import annotations

from typing import Any

from rollout.core.model import Flag
from rollout.services.container import Services
from rollout.storage.keys import Keys
from rollout.wiring import build_controller, build_services
from tests.conftest import make_settings
from tests.support import FakeClock, wait_until

PLAN: dict[str, Any] = {
    "auto_advance": True,
    "stages": [{"percent": 10, "bake": "0s"}, {"percent": 50}],
}


def test_a_tick_that_loses_the_lock_stops_acting(
    real_services: Services, real_redis: Any, clock: FakeClock
) -> None:
    for key in ("A", "B"):  # each ready to advance; the tick takes them in key order
        real_services.flags.create(key, actor="t", **PLAN)
        real_services.flags.advance(key, actor="t")
    monotonic = FakeClock(0.0)
    controller = build_controller(real_services, monotonic=monotonic)
    assert controller.lead()
    heir = real_services.leadership.new_lock()

    def lose_the_lock(key: str, flag: Flag | None) -> None:
        if key == "A":
            # The act on A took longer than the lock lives: it expired, and another took it.
            real_redis.delete(Keys().leader)
            assert heir.acquire()
            monotonic.advance(controller.lock.ttl_ms / 1000)

    real_services.flags.listeners.append(lose_the_lock)
    before_b = real_services.flags.get("B")
    outcomes = controller.tick(clock())
    assert [(o.key, o.decision.action, o.acted) for o in outcomes] == [("A", "advance", True)]
    assert real_services.flags.get("A").stage == 1
    assert real_services.flags.get("B") == before_b  # not moved, not even a status word
    assert heir.holder() == heir.owner  # the loser's renewal attempt took nothing back
    assert real_services.health.controller().leader == heir.owner


def test_a_stale_holder_can_neither_renew_nor_release(
    redis_server_flushed: Any, real_redis: Any
) -> None:
    services = build_services(
        make_settings(redis_url=redis_server_flushed.url, leader_ttl=0.2), redis_client=real_redis
    )
    stale = build_controller(services, interval=0.1)
    assert stale.lead()
    # A long pause (GC, a stopped VM): the lock expires for real, and a new leader takes it.
    assert wait_until(lambda: stale.lock.holder() is None, timeout=5)
    heir = build_controller(services, interval=0.1)
    assert heir.lead()

    assert stale.lock.acquire() is False  # the owner-checked renewal refuses
    assert stale.lead() is False
    assert stale.lock.release() is False  # the owner-checked delete refuses
    stale.release()
    assert heir.lock.holder() == heir.lock.owner
    assert real_redis.pttl(Keys().leader) > 0  # still expiring on the heir's own schedule
    assert heir.lead() is True
