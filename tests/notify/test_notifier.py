"""The notifier against real HTTP receivers, on every topology (single, Sentinel, Cluster)."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from rollout.core.destinations import Destination
from rollout.core.errors import StorageError
from rollout.core.events import verify
from rollout.notify.loop import Notifier
from rollout.services.container import Services
from rollout.wiring import build_controller, build_notifier, build_services
from tests.conftest import make_settings
from tests.controller.test_controller import KEY, outcomes, seed
from tests.notify.receiver import Receiver, serving
from tests.support import FakeClock, wait_until

SECRET = "whsec-0123456789"


def destination(services: Services, name: str = "hook", **fields: object) -> None:
    services.notify.save(
        Destination(name, f"{name.upper()}_URL", secret_env="HOOK_SECRET", **fields)
    )  # type: ignore[arg-type]


def notifier(services: Services, *receivers: tuple[str, Receiver], **options: object) -> Notifier:
    environ = {"HOOK_SECRET": SECRET}
    environ.update({f"{name.upper()}_URL": r.url for name, r in receivers})
    return build_notifier(services, environ=environ, **options)  # type: ignore[arg-type]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serving() as r:
        yield r


def test_a_controller_kill_arrives_signed(
    real_services: Services, clock: FakeClock, receiver: Receiver
) -> None:
    destination(real_services, events=("kill",))
    seed(real_services)
    outcomes(real_services, clock, treatment=(1000, 400), control=(9000, 45))
    [outcome] = build_controller(real_services).tick(clock())
    assert outcome.decision.action == "kill"
    assert notifier(real_services, ("hook", receiver)).tick() == 1
    [got] = receiver.accepted
    assert got.headers["Content-Type"] == "application/json"
    assert verify(SECRET, got.headers["Rollout-Signature"], got.body)
    assert not verify("wrong", got.headers["Rollout-Signature"], got.body)
    body = got.json
    assert body["type"] == "kill" and body["flag"] == KEY and body["actor"] == "controller"
    assert body["id"] == got.event_id and body["readings"][0]["verdict"] == "fail"
    assert body["after"] == {"state": "killed", "percent": 0, "stage": None}


def test_order_per_flag_is_kept(real_services: Services, receiver: Receiver) -> None:
    destination(real_services)
    flags = real_services.flags
    for key in ("A", "B"):
        flags.create(key, actor="op", stages=[{"percent": 10}, {"percent": 100}])
    for _ in range(3):
        for key in ("A", "B"):
            flags.advance(key, actor="op")
            flags.rollback(key, actor="op")
    n = notifier(real_services, ("hook", receiver))
    n.tick()
    for key in ("A", "B"):
        kinds = [r.json["type"] for r in receiver.accepted if r.json["flag"] == key]
        assert kinds == ["create"] + ["advance", "rollback"] * 3
        ids = [r.event_id for r in receiver.accepted if r.json["flag"] == key]
        assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split(".")[0].split("-"))))


def test_500_then_200_redelivers_the_same_id(real_services: Services, clock: FakeClock) -> None:
    destination(real_services)
    real_services.flags.create(KEY, actor="op")
    with serving([500]) as receiver:
        n = notifier(real_services, ("hook", receiver))
        assert n.tick(clock()) == 0
        assert real_services.notify.stats("hook")["failed"] == 1
        assert n.tick(clock()) == 0  # backing off: not yet due
        assert n.tick(clock() + 60) == 1
    first, second = receiver.received
    assert first.event_id == second.event_id and first.body == second.body
    stats = real_services.notify.stats("hook")
    assert (stats["delivered"], stats["failed"], stats["backlog"]) == (1, 1, 0)
    assert stats["last_error"] is not None and "HTTP 500" in str(stats["last_error"])


def test_a_refused_connection_is_retried(
    real_services: Services, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    destination(real_services)
    real_services.flags.create(KEY, actor="op")
    held = socket.socket()
    held.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    url = f"http://127.0.0.1:{held.getsockname()[1]}/hook/s3cr3t-path"
    n = build_notifier(real_services, environ={"HOOK_URL": url, "HOOK_SECRET": SECRET})
    with caplog.at_level(logging.WARNING, logger="rollout.notifier"):
        assert n.tick(clock()) == 0
    assert "connection refused; retrying" in caplog.text  # logged, and without the URL
    assert "connection refused" in str(real_services.notify.stats("hook")["last_error"])
    assert "s3cr3t-path" not in caplog.text and "s3cr3t-path" not in str(
        real_services.notify.stats("hook")
    )
    with serving(sock=held) as receiver:  # now it listens on the very same port
        assert n.tick(clock() + 60) == 1
    assert [r.json["type"] for r in receiver.accepted] == ["create"]


def test_restarted_mid_backlog_delivers_everything_none_skipped(
    real_services: Services, clock: FakeClock
) -> None:
    destination(real_services)
    flags = real_services.flags
    flags.create(KEY, actor="op")
    for i in range(19):
        flags.update(KEY, {"description": f"d{i}"}, actor="op")
    with serving([200] * 7 + [500] * 100) as receiver:
        first = notifier(real_services, ("hook", receiver))
        first.tick(clock())  # 7 delivered, then the receiver fails: mid-backlog
        assert len(receiver.accepted) == 7
        del first  # gone without any cleanup, as a killed process would be
        receiver.statuses.clear()
        second = notifier(real_services, ("hook", receiver))
        second.tick(clock())
    ids = receiver.ids()
    assert len(ids) == 20 == len(set(ids))
    assert [r.json["type"] for r in receiver.accepted] == ["create"] + ["update"] * 19


def test_a_dead_destination_does_not_delay_a_live_one(
    real_services: Services, clock: FakeClock
) -> None:
    destination(real_services, "dead")
    destination(real_services, "live")
    real_services.flags.create(KEY, actor="op")
    hold = threading.Event()
    with serving(hold=hold) as dead, serving() as live:
        n = notifier(real_services, ("dead", dead), ("live", live))
        runner = threading.Thread(target=n.run, daemon=True)
        runner.start()
        try:
            assert wait_until(dead.waiting.is_set, timeout=20)  # dead's request hangs...
            real_services.flags.kill(KEY, actor="op", reason="stop")
            # ...while the live one receives both events.
            assert wait_until(lambda: len(live.accepted) == 2, timeout=20)
            assert not hold.is_set() and dead.accepted == []
        finally:
            n.stop.set()
            hold.set()
            runner.join(20)
    assert [r.json["type"] for r in live.accepted] == ["create", "kill"]


def test_the_notifier_rides_out_a_cluster_outage(
    own_cluster: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Every node of a Cluster gone and back: the notifier's loop logs the outage, keeps
    running, and delivers again once the nodes answer."""
    services = build_services(make_settings(redis_url=own_cluster.url))  # wired from the URL
    destination(services)
    services.flags.create(KEY, actor="op")
    with serving() as receiver, caplog.at_level(logging.ERROR, logger="rollout.notifier"):
        n = notifier(services, ("hook", receiver))
        runner = threading.Thread(target=n.run, daemon=True)
        runner.start()
        try:
            assert wait_until(lambda: len(receiver.accepted) == 1, timeout=20)
            for node in own_cluster.nodes:
                node.stop()
            assert wait_until(lambda: "Redis unreachable" in caplog.text, timeout=20)
            assert runner.is_alive()
            for node in own_cluster.nodes:
                node.start()
            own_cluster.wait_healthy()
            # The test cluster keeps no data across a restart: the destination comes anew.
            destination(services)
            services.flags.create("AFTER", actor="op")
            assert wait_until(lambda: len(receiver.accepted) == 2, timeout=30), caplog.text
            assert runner.is_alive()
        finally:
            n.stop.set()
            runner.join(20)
            services.close()
    assert [(r.json["flag"], r.json["type"]) for r in receiver.accepted] == [
        (KEY, "create"),
        ("AFTER", "create"),
    ]


def test_a_hold_is_not_repeated_every_tick(
    real_services: Services, clock: FakeClock, receiver: Receiver
) -> None:
    destination(real_services, events=("hold",))
    seed(real_services, bake="1s")
    controller = build_controller(real_services)
    n = notifier(real_services, ("hook", receiver))
    outcomes(real_services, clock, treatment=(20000, 1400), control=(180000, 9000))
    for _ in range(6):
        clock.advance(1)
        [outcome] = controller.tick(clock())
        assert outcome.decision.action == "hold"
        n.tick(clock())
    assert [r.json["type"] for r in receiver.accepted] == ["hold"]


def test_dropped_after_the_retry_period_and_counted(
    real_services: Services, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    destination(real_services)
    real_services.flags.create(KEY, actor="op")
    with serving([500] * 50) as receiver:
        n = notifier(real_services, ("hook", receiver))
        n.tick(clock())
        with caplog.at_level(logging.ERROR, logger="rollout.notifier"):
            n.tick(clock() + 24 * 3600 + 1)
        assert "dropped" in caplog.text and caplog.text.count("dropped") == 1
        receiver.statuses.clear()
        real_services.flags.update(KEY, {"description": "after"}, actor="op")
        n.tick(clock() + 24 * 3600 + 2)
    stats = real_services.notify.stats("hook")
    assert stats["dropped"] == 1 and stats["delivered"] == 1
    assert [r.json["type"] for r in receiver.accepted] == ["update"]


def test_filters_and_no_history_for_a_new_destination(
    real_services: Services, receiver: Receiver, real_redis: Any
) -> None:
    real_services.flags.create("PROMPT_OLD", actor="op")  # before the destination: not sent
    created_ms = int(real_services.flags.audit("PROMPT_OLD", 1)[0]["id"].split("-")[0])
    assert wait_until(
        lambda: int(real_redis.time()[0]) * 1000 + real_redis.time()[1] // 1000 > created_ms + 1
    )
    destination(real_services, events=("kill", "create"), flags=("PROMPT_*",))
    real_services.flags.create("PROMPT_X", actor="op")
    real_services.flags.create("OTHER", actor="op")
    real_services.flags.kill("PROMPT_X", actor="op", reason="r")
    real_services.flags.kill("OTHER", actor="op", reason="r")
    real_services.flags.kill("PROMPT_OLD", actor="op", reason="r")
    notifier(real_services, ("hook", receiver)).tick()
    assert [(r.json["flag"], r.json["type"]) for r in receiver.accepted] == [
        ("PROMPT_OLD", "kill"),
        ("PROMPT_X", "create"),
        ("PROMPT_X", "kill"),
    ]


def test_slack_format_says_what_happened_first(real_services: Services, receiver: Receiver) -> None:
    destination(real_services, format="slack", events=("kill",))
    real_services.flags.create(KEY, actor="op")
    real_services.flags.kill(KEY, actor="op", reason="pager: 5xx above 10%")
    notifier(real_services, ("hook", receiver)).tick()
    [got] = receiver.accepted
    assert got.json["text"].splitlines()[0] == f"{KEY} killed by op: pager: 5xx above 10%"
    assert verify(SECRET, got.headers["Rollout-Signature"], got.body)


def test_one_notifier_leads_and_apart_from_the_controller(real_services: Services) -> None:
    controller_lock = real_services.leadership.new_lock()
    assert controller_lock.acquire()
    first, second = notifier(real_services), notifier(real_services)
    assert first.lock.acquire() and not second.lock.acquire()
    first.lock.release()
    assert second.lock.acquire()
    assert second.lock.holder() == second.lock.owner != controller_lock.holder()


class FlakyLock:
    """The notifier's lock over a Redis that is away for the first ``down`` attempts."""

    owner, ttl_ms, token = "flaky", 1000, 0

    def __init__(self, down: int) -> None:
        self.down, self.attempts = down, 0

    def acquire(self) -> bool:
        self.attempts += 1
        if self.attempts <= self.down:
            raise StorageError("Redis unreachable: connection refused")
        return True

    def release(self) -> bool:
        return True

    def holder(self) -> str | None:
        return self.owner


def test_an_outage_is_logged_once_and_its_end_once(
    real_services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    lock = FlakyLock(down=10)
    n = Notifier(real_services.events, real_services.notify, lock, environ={}, lock_interval=0.001)
    runner = threading.Thread(target=n.run, daemon=True)
    with caplog.at_level(logging.INFO, logger="rollout.notifier"):
        runner.start()
        try:
            assert wait_until(lambda: lock.attempts > lock.down + 3)
        finally:
            n.stop.set()
            runner.join(20)
    lines = [r.getMessage() for r in caplog.records if r.name == "rollout.notifier"]
    assert [line.split(" (")[0] for line in lines if "Redis" in line] == [
        "Redis unreachable",  # once for ten failed attempts, not ten times
        "Redis reachable again",
    ]
