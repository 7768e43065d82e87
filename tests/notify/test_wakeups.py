"""The notifier wakes on the change channel and on event-stream appends instead of polling, on
every topology (single, Sentinel, Cluster); a slow safety poll reads what a lost message left
unsaid; an idle notifier reads no stream.

A notifier built here has a safety poll of an hour, unless a test is about it: anything that
arrives within a test's bounds came through the channel (or a worker's drained queue), never
through a periodic read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from rollout.core.defaults import NOTIFY_BATCH
from rollout.core.destinations import Destination
from rollout.notify.loop import Notifier
from rollout.services.container import Services
from rollout.services.watch import StreamWatch
from rollout.storage.connection import client_for_url
from rollout.storage.events import EventStore
from rollout.storage.keys import Keys
from rollout.storage.redis_process import RedisProcess
from rollout.wiring import build_controller, build_notifier, build_services
from tests.conftest import make_settings
from tests.controller.test_controller import KEY, outcomes, seed
from tests.notify.receiver import Receiver, serving
from tests.support import FakeClock, wait_until

HOUR = 3600.0
KEYS = Keys()


def destination(services: Services, **fields: Any) -> None:
    services.notify.save(Destination("hook", "HOOK_URL", **fields))


@contextmanager
def running(
    services: Services, receiver: Receiver, *, safety_poll: float = HOUR, **options: Any
) -> Iterator[Notifier]:
    """A notifier's real loop in a thread, once its channel follower is connected."""
    n = build_notifier(
        services, environ={"HOOK_URL": receiver.url}, safety_poll=safety_poll, **options
    )
    thread = threading.Thread(target=n.run, daemon=True)
    thread.start()
    try:
        assert n.watch is not None
        assert wait_until(lambda: n.watch is not None and n.watch.connected, timeout=20)
        yield n
    finally:
        n.stop.set()
        thread.join(20)
        assert not thread.is_alive()


def kinds(receiver: Receiver, key: str = KEY) -> list[str]:
    with receiver.lock:
        return [r.json["type"] for r in receiver.accepted if r.json["flag"] == key]


def test_a_write_is_delivered_through_the_change_channel(real_services: Services) -> None:
    destination(real_services)
    flags = real_services.flags
    flags.create(KEY, actor="op", stages=[{"percent": 10}, {"percent": 100}])
    with serving() as receiver, running(real_services, receiver):
        assert wait_until(lambda: kinds(receiver) == ["create"], timeout=20)  # the first read
        flags.advance(KEY, actor="op")
        flags.create("OTHER", actor="op")  # a flag the notifier has never read before
        flags.kill(KEY, actor="op", reason="pager")
        assert wait_until(lambda: kinds(receiver) == ["create", "advance", "kill"], timeout=20)
        assert wait_until(lambda: kinds(receiver, "OTHER") == ["create"], timeout=20)


def test_a_controller_hold_wakes_it_through_the_event_stream(
    real_services: Services, clock: FakeClock
) -> None:
    """A hold writes no flag (no change message): the event stream's append must wake it."""
    destination(real_services, events=("hold",))
    seed(real_services, bake="1s")
    controller = build_controller(real_services)
    with serving() as receiver, running(real_services, receiver) as n:
        assert wait_until(lambda: n.workers.get("hook") is not None, timeout=20)
        outcomes(real_services, clock, treatment=(20000, 1400), control=(180000, 9000))
        clock.advance(1)
        [outcome] = controller.tick(clock())
        assert outcome.decision.action == "hold"
        assert wait_until(lambda: kinds(receiver) == ["hold"], timeout=20)


def test_what_came_while_a_queue_was_busy_follows_once_it_drains(
    real_services: Services,
) -> None:
    """A worker's flag is not read while its queue holds anything; entries written meanwhile
    are read when it empties, not at the next safety poll."""
    destination(real_services)
    flags = real_services.flags
    flags.create(KEY, actor="op")
    hold = threading.Event()
    with serving(hold=hold) as receiver, running(real_services, receiver):
        assert wait_until(receiver.waiting.is_set, timeout=20)  # the create is being sent...
        for i in range(3):  # ...while these are written, heard of, and not read
            flags.update(KEY, {"description": f"d{i}"}, actor="op")
        hold.set()
        assert wait_until(lambda: kinds(receiver) == ["create"] + ["update"] * 3, timeout=20)


def test_a_read_cut_at_a_full_batch_reads_on(real_services: Services) -> None:
    """More entries than one read takes (NOTIFY_BATCH), none of them wanted: the notifier
    reads on past the batch at once, to the kill behind it."""
    destination(real_services, events=("kill",))
    flags = real_services.flags
    flags.create(KEY, actor="op")
    for i in range(NOTIFY_BATCH + 20):
        flags.update(KEY, {"description": f"d{i}"}, actor="op")
    flags.kill(KEY, actor="op", reason="behind the batch")
    with serving() as receiver, running(real_services, receiver):
        assert wait_until(lambda: kinds(receiver) == ["kill"], timeout=30)


def test_a_lost_message_is_read_by_the_safety_poll(
    real_services: Services, real_redis: Any
) -> None:
    """An entry appended with no message at all (as a lost one, or an older writer, leaves
    it) is still delivered: by the watch's periodic full load, here every half second."""
    destination(real_services, events=("hold",))
    real_services.flags.create(KEY, actor="op")
    with serving() as receiver, running(real_services, receiver, safety_poll=0.5) as n:
        assert wait_until(lambda: n.workers.get("hook") is not None, timeout=20)
        at = real_services.notify.server_time_ms()
        fields = {"type": "hold", "flag": KEY, "actor": "controller", "at": str(at)}
        real_redis.xadd(KEYS.events(KEY), {**fields, "reason": "quiet"})  # no PUBLISH
        assert wait_until(lambda: kinds(receiver) == ["hold"], timeout=20)
        assert n.watch is not None and n.watch.loads >= 2


def test_the_watch_names_written_and_evented_flags(
    real_services: Services, real_redis: Any
) -> None:
    watch = StreamWatch(real_redis, KEYS, safety_poll=HOUR)
    taken: set[str] = set()

    def took(keys: set[str]) -> bool:
        taken.update(watch.take() or ())
        return keys <= taken

    watch.start()
    try:
        assert wait_until(lambda: watch.connected, timeout=20)
        assert watch.wait(0) and watch.take() is None  # the first full load: every flag
        assert not watch.wait(0) and watch.take() == set()
        real_services.flags.create("A", actor="op")  # a write: the change channel
        EventStore(real_redis, KEYS).append("B", None, {"type": "hold", "flag": "B"})
        assert wait_until(lambda: took({"A", "B"}), timeout=20)
        taken.clear()
        real_services.flags.delete("A", actor="op")
        assert wait_until(lambda: took({"A"}), timeout=20)
    finally:
        watch.stop()
    assert watch.wait(HOUR) is False  # stopped: no wait blocks any more


@pytest.fixture
def single(redis_server_flushed: RedisProcess, clock: FakeClock) -> Iterator[tuple[Services, Any]]:
    """Services over one server whose command counts (INFO commandstats) are the notifier's."""
    redis_client = client_for_url(redis_server_flushed.url)
    services = build_services(make_settings(), redis_client=redis_client, clock=clock)
    yield services, redis_client
    services.close()
    redis_client.close()


def calls(redis_client: Any) -> Callable[[str], int]:
    stats = redis_client.info("commandstats")
    return lambda name: int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))


def test_an_idle_notifier_reads_no_stream(single: tuple[Services, Any]) -> None:
    """Counted by the server: while nothing is written, lock renewals go on and no XRANGE is
    sent, but for the one re-read after a queue drained (polling sent 2 per flag per turn)."""
    services, redis_client = single
    destination(services)
    for key in ("A", "B", "C"):
        services.flags.create(key, actor="op")
    with serving() as receiver, running(services, receiver, lock_interval=0.05):
        assert wait_until(lambda: len(receiver.accepted) == 3, timeout=20)
        redis_client.config_resetstat()
        # Ten renewals of the lock (one EVAL each): ten turns of the loop, which polling
        # spent reading every flag's two streams on.
        assert wait_until(lambda: calls(redis_client)("eval") >= 10, timeout=20)
        counted = calls(redis_client)
    assert counted("xrange") <= 2 * 3  # at most the drained queues' one re-read
    assert counted("eval") >= 10
    assert len(receiver.accepted) == 3
