"""Emergency stops racing other writers, in threads against a real redis-server.

DESIGN §1: an operator's command never fails only because another write landed first, and a
kill above all never does. Every write is compare-and-set and audited exactly once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from rollout.core.errors import ConcurrentUpdate, FlagNotFound
from rollout.core.model import Flag, State
from rollout.services.container import Services
from rollout.services.flags import FlagService
from rollout.storage.flags import FlagStore
from rollout.storage.keys import Keys
from rollout.wiring import build_services
from tests.conftest import make_settings
from tests.support import FakeClock

PLAN = {"stages": [{"percent": 10}, {"percent": 50}, {"percent": 100}]}


def run_together(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run every job in its own thread, all released at once; each one's result or exception."""
    results: list[Any] = [None] * len(jobs)
    start = threading.Barrier(len(jobs))

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = jobs[index]()
        except Exception as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a writer hung"
    return results


def audit_of(services: Services, key: str) -> list[dict[str, Any]]:
    """Oldest first, after checking each entry has its own version, one after the other."""
    entries = services.flags.audit(key, limit=10_000)[::-1]
    assert [e["version"] for e in entries] == list(range(1, len(entries) + 1)), entries
    return entries


def test_kill_kill_all_and_delete_racing_each_other(real_services: Services) -> None:
    flags = real_services.flags
    keys = [f"F{i}" for i in range(6)]
    deleted = set(keys[::2])
    for key in keys:
        flags.create(key, actor="setup", **PLAN)
        flags.advance(key, actor="setup")
    jobs: list[tuple[str, str | None, Callable[[], Any]]] = []
    for key in keys:
        for i in range(3):
            jobs.append(
                ("kill", key, lambda k=key, i=i: flags.kill(k, reason=f"r{i}", actor=f"oncall-{i}"))
            )
        if key in deleted:
            jobs.append(("delete", key, lambda k=key: flags.delete(k, actor="cleanup")))
    for i in range(2):
        jobs.append(("kill_all", None, lambda i=i: flags.kill_all(reason="all", actor=f"ops-{i}")))
    results = run_together([job for _, _, job in jobs])

    for (kind, key, _), result in zip(jobs, results, strict=True):
        if isinstance(result, FlagNotFound):
            # The only refusal: a kill that came after its flag was deleted.
            assert kind == "kill" and key in deleted, (kind, key)
        elif kind == "kill":
            assert isinstance(result, Flag) and result.state is State.KILLED, (key, result)
        elif kind == "kill_all":
            assert isinstance(result, list), result
            assert all(f.state is State.KILLED for f in result), result
        else:
            assert result is None, (kind, key, result)

    for key in keys:
        actions = [e["action"] for e in audit_of(real_services, key)]
        if key in deleted:
            # The kill landed before the delete, or the delete came first: once either way.
            assert actions in (
                ["create", "advance", "kill", "delete"],
                ["create", "advance", "delete"],
            ), (key, actions)
            assert key not in {f.key for f in flags.list_flags()}
        else:
            assert actions == ["create", "advance", "kill"], (key, actions)
            flag = flags.get(key)
            assert flag.state is State.KILLED and flag.version == 3
            assert flag.kill is not None and flag.kill.state_before is State.ROLLING
            assert flag.kill.percent_before_bp == 1000


def test_a_kill_lands_while_twenty_threads_write_the_same_flag(real_services: Services) -> None:
    flags = real_services.flags
    flags.create("F", actor="setup", **PLAN)
    flags.advance("F", actor="setup")
    writers, writes_each, rounds = 20, 10, 5
    finished = threading.Semaphore(0)

    def writer(i: int) -> Callable[[], int]:
        def job() -> int:
            landed = 0
            try:
                for j in range(writes_each):
                    try:
                        flags.update("F", {"description": f"w{i}.{j}"}, actor=f"w{i}")
                        landed += 1
                    except ConcurrentUpdate:
                        pass  # an update may give up (bounded retries); a kill may not
            finally:
                finished.release()
            return landed

        return job

    def operator() -> list[Flag]:
        """Kill and revive, again and again for as long as the writers write."""
        killed: list[Flag] = []
        writers_left = writers
        while len(killed) < rounds or writers_left:
            killed.append(flags.kill("F", reason=f"stop {len(killed)}", actor="oncall"))
            while True:  # the revive only sets up the next kill; it is not under test
                try:
                    flags.revive("F", actor="oncall")
                    break
                except ConcurrentUpdate:
                    continue
            while writers_left and finished.acquire(blocking=False):
                writers_left -= 1
        return killed

    operator_result, *landed = run_together([operator, *(writer(i) for i in range(writers))])
    assert not isinstance(operator_result, Exception), operator_result
    assert all(isinstance(n, int) for n in landed), landed
    kills: list[Flag] = operator_result
    assert [k.kill.reason for k in kills if k.kill] == [f"stop {n}" for n in range(len(kills))]
    assert all(k.state is State.KILLED for k in kills)
    actions = [e["action"] for e in audit_of(real_services, "F")]
    # Each write once: the updates that landed, and one kill and one revive per round.
    assert actions.count("update") == sum(landed)
    assert actions.count("kill") == actions.count("revive") == len(kills)
    assert len(actions) == 2 + sum(landed) + 2 * len(kills)
    assert flags.get("F").version == len(actions)


def test_a_kill_outlasts_any_run_of_lost_races(
    real_services: Services, real_redis: Any, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic contention: another worker's write lands between every read and write."""
    # This worker's flag service over a store built here, so its reads can be made to lose.
    store = FlagStore(real_redis, Keys())
    flags = FlagService(store, clock, real_services.gates)
    other = build_services(make_settings(), redis_client=real_redis, clock=clock).flags
    flags.create("F", actor="setup", **PLAN)
    flags.advance("F", actor="setup")
    races = 120  # more than any bound on the retries of an ordinary move
    lost = 0
    read = store.get

    def read_then_lose_the_race(key: str) -> Flag:
        nonlocal lost
        current = read(key)
        if lost < races:
            lost += 1
            other.update(key, {"description": f"race {lost}"}, actor="other-worker")
        return current

    monkeypatch.setattr(store, "get", read_then_lose_the_race)
    killed = flags.kill("F", reason="stop", actor="oncall")
    assert killed.state is State.KILLED and lost == races
    actions = [e["action"] for e in audit_of(real_services, "F")]
    assert actions == ["create", "advance", *["update"] * races, "kill"]
