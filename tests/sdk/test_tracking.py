"""track()/record(): outcomes land in the right arm, flush as deltas, survive an outage."""

from __future__ import annotations

from typing import Any

import pytest

from rollout import RolloutClient
from rollout.core.bucketing import bucket
from rollout.services.container import Services
from rollout.storage.redis_process import RedisProcess
from tests.support import wait_until

KEY = "F"


def users(percent_bp: int, *, treatment: bool, n: int) -> list[str]:
    """Users the bucket puts in (or out of) the cohort."""
    found = [u for u in (f"user-{i}" for i in range(10_000)) if (bucket(KEY, u) < percent_bp)]
    if not treatment:
        found = [u for u in (f"user-{i}" for i in range(10_000)) if bucket(KEY, u) >= percent_bp]
    return found[:n]


@pytest.fixture
def live(real_services: Services, real_url: str) -> Any:
    real_services.flags.create(KEY, actor="t", allow=["qa-alice"], stages=[{"percent": 50}])
    real_services.flags.advance(KEY, actor="t")
    client = RolloutClient(real_url, flush_interval=60, environ={})
    yield real_services, client
    client.close()


def stage(services: Services) -> Any:
    return services.gates.evidence(services.flags.get(KEY)).stage


def test_track_records_outcomes_in_the_users_arm(live: Any) -> None:
    services, client = live
    flag = client.flag(KEY)
    for user in users(5000, treatment=True, n=30):
        with flag.track(user) as enabled:
            assert enabled
    for user in users(5000, treatment=False, n=20):
        with pytest.raises(KeyError), flag.track(user) as enabled:
            assert not enabled
            raise KeyError("boom")
    with flag.track("qa-alice") as enabled:  # allowed: on, but not random assignment
        assert enabled
    client.flush()
    evidence = stage(services)
    assert (evidence.treatment.samples, evidence.treatment.errors) == (30, 0)
    assert (evidence.control.samples, evidence.control.errors) == (20, 20)
    assert evidence.control.errors_by_type == {"KeyError": 20}
    # A tracked answer is a sample; exposures are what is_enabled answered (none here).
    assert evidence.treatment.exposures == 0 and evidence.control.exposures == 0
    assert sum(evidence.treatment.latency.values()) == 30


def test_record_by_hand_and_bad_arguments_never_raise(live: Any) -> None:
    services, client = live
    flag = client.flag(KEY)
    user = users(5000, treatment=True, n=1)[0]
    flag.record(user, ok=False, duration_ms=12.5, error_type="Timeout")
    flag.record(user, ok=False)  # no type: counted as "error"
    flag.record(user, ok=True, duration_ms="soon")  # type: ignore[arg-type]
    odd = object()  # not a string: bucketed by its text
    odd_treated = bucket(KEY, str(odd)) < 5000
    flag.record(odd, ok=True)
    client.flush()
    arms = stage(services)
    assert arms.treatment.errors_by_type == {"Timeout": 1, "error": 1}
    assert (arms.treatment.samples, arms.control.samples) == (2 + odd_treated, 1 - odd_treated)
    assert services.health.sdk_dropped() == 1  # the duration that is not a number


def test_is_enabled_counts_exposures_not_samples(live: Any) -> None:
    services, client = live
    flag = client.flag(KEY)
    for user in users(5000, treatment=True, n=7) + users(5000, treatment=False, n=5):
        flag.is_enabled(user)
    flag.is_enabled("qa-alice")
    client.flush()
    client.flush()  # a second flush sends nothing twice
    evidence = stage(services)
    assert (evidence.treatment.exposures, evidence.control.exposures) == (7, 5)
    assert evidence.treatment.samples == 0


def test_counts_wait_out_an_outage(own_services: Services, own_redis_server: RedisProcess) -> None:
    own_services.flags.create(KEY, actor="t", stages=[{"percent": 50}])
    own_services.flags.advance(KEY, actor="t")
    with RolloutClient(own_redis_server.url, flush_interval=60, environ={}) as client:
        flag = client.flag(KEY)
        own_redis_server.stop()
        for user in users(5000, treatment=True, n=10):
            with flag.track(user):
                pass
        client.flush()  # fails quietly; the deltas wait
        own_redis_server.start()
        assert wait_until(lambda: (client.flush() or stage(own_services).treatment.samples) == 10)


def test_a_new_stage_counts_from_zero(live: Any) -> None:
    services, client = live
    flag = client.flag(KEY)
    for user in users(5000, treatment=True, n=10):
        flag.record(user, ok=False)
    client.flush()
    services.clock.advance(1)
    services.flags.set_percent(KEY, 60, actor="t")  # a manual move restarts the evidence
    assert wait_until(lambda: client.known_flags()[KEY].percent_bp == 6000)
    for user in users(6000, treatment=True, n=3):
        flag.record(user, ok=True)
    client.flush()
    assert stage(services).treatment.samples == 3


def test_a_track_block_spanning_a_change_and_a_flush_keeps_its_outcome(live: Any) -> None:
    services, client = live
    flag = client.flag(KEY)
    user = users(5000, treatment=True, n=1)[0]
    with flag.track(user):
        services.flags.update(KEY, {"description": "changed mid-request"}, actor="t")
        assert wait_until(lambda: client.known_flags()[KEY].description != "")
        client.flush()  # the old answer function's counts go out; it stays for late outcomes
    client.flush()
    assert stage(services).treatment.samples == 1


def test_a_resync_that_changes_nothing_keeps_the_answer_functions(live: Any) -> None:
    _services, client = live
    handle = client.flag(KEY)
    before = handle.compiled
    client.table.replace_all(client.known_flags())
    assert handle.compiled is before


def test_an_unstorable_error_type_does_not_stop_flushing(
    real_services: Services, real_url: str
) -> None:
    real_services.flags.create("G", actor="t", stages=[{"percent": 100}])
    real_services.flags.advance("G", actor="t")
    with RolloutClient(real_url, flush_interval=60, environ={}) as client:
        flag = client.flag("G")
        flag.record("u1", ok=False, error_type="bad\ud800name")
        client.flush()
        flag.record("u2", ok=False, error_type="Timeout")
        client.flush()
    treatment = real_services.gates.evidence(real_services.flags.get("G")).stage.treatment
    assert treatment.samples == 2
    assert treatment.errors_by_type == {"bad\\ud800name": 1, "Timeout": 1}


def test_past_the_metrics_buffer_the_oldest_replaced_values_are_dropped_and_counted(
    real_services: Services, real_url: str
) -> None:
    services = real_services
    services.flags.create(KEY, actor="t", stages=[{"percent": 50}])
    services.flags.advance(KEY, actor="t")
    treated = users(5000, treatment=True, n=1)[0]
    url = real_url
    with RolloutClient(url, flush_interval=60, metrics_buffer=2, environ={}) as client:
        flag = client.flag(KEY)
        for samples in (1, 2, 3, 4, 5):  # each value replaced, with its counts still unsent
            for _ in range(samples):
                flag.record(treated)
            version = services.flags.update(KEY, {"description": f"{samples}"}, actor="t").version
            assert wait_until(lambda v=version: client.known_flags()[KEY].version == v)
        for _ in range(7):
            flag.record(treated)
        client.flush()
        # Five replaced values and room for two: the three oldest (1 + 2 + 3) are dropped.
        assert services.health.sdk_dropped() == 6
        assert stage(services).treatment.samples == 4 + 5 + 7
        client.flush()
        assert services.health.sdk_dropped() == 6  # sent once, not again


def test_outcomes_before_and_after_a_change_in_one_stage_add_up(live: Any) -> None:
    services, client = live
    flag = client.flag(KEY)
    user = users(5000, treatment=True, n=1)[0]
    flag.record(user, ok=False, duration_ms=5.0, error_type="Timeout")
    changed = services.flags.update(KEY, {"description": "same stage"}, actor="t")
    assert wait_until(lambda: client.known_flags()[KEY].version == changed.version)
    flag.record(user, ok=False, duration_ms=5.0, error_type="Timeout")
    flag.record(user, ok=True, duration_ms=5.0)
    client.flush()
    evidence = stage(services).treatment
    assert (evidence.samples, evidence.errors) == (3, 2)
    assert evidence.errors_by_type == {"Timeout": 2}
    assert sum(evidence.latency.values()) == 3


def test_a_flush_whose_reply_was_lost_is_sent_again_and_counted_once(
    live: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch landed but the flush failed (a node died before answering): the next flush
    sends the same batch again, which adds nothing, then what was recorded since."""
    from rollout.core.errors import StorageError

    services, client = live
    flag = client.flag(KEY)
    treated = users(5000, treatment=True, n=15)
    for user in treated[:10]:
        with flag.track(user):
            pass
    store = client._recorder._metrics_store()
    real_flush = store.flush
    sequences: list[int] = []

    def lands_then_fails(batch: Any, **kwargs: Any) -> None:
        sequences.append(batch.sequence)
        real_flush(batch, **kwargs)
        if len(sequences) == 1:
            raise StorageError(ConnectionError("the reply was lost"))

    monkeypatch.setattr(store, "flush", lands_then_fails)
    client.flush()  # landed, reported failed: kept
    assert stage(services).treatment.samples == 10
    for user in treated[10:]:
        with flag.track(user):
            pass
    client.flush()  # the same batch again (applied once), then the 5 recorded since
    assert sequences[:2] == [sequences[0]] * 2 and sequences[2] > sequences[0]
    assert stage(services).treatment.samples == 15


def test_a_forked_child_flushes_under_a_name_of_its_own(live: Any) -> None:
    """A pre-fork server's workers inherit the client and its batch numbers: under the
    parent's name the flush markers would take a child's batches for the parent's and skip
    them. Each child reports as itself, so both count."""
    import os

    services, client = live
    flag = client.flag(KEY)
    treated = users(5000, treatment=True, n=2)
    with flag.track(treated[0]):
        pass
    client.flush()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's exit code is the assertion
        try:
            with flag.track(treated[1]):
                pass
            client.flush()
            os._exit(0)
        finally:
            os._exit(4)
    with flag.track(treated[1]):
        pass
    client.flush()
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert wait_until(lambda: stage(services).treatment.samples == 3)
    assert stage(services).treatment.samples == 3


def test_a_forked_child_leaves_the_parents_unsent_counts_and_lock_to_the_parent(
    live: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the parent had recorded and not sent (here a batch kept after a failed flush) is
    sent once, by the parent; a lock held at the fork (by a thread that does not exist in the
    child) does not hang the child."""
    import os
    import threading

    from rollout.core.errors import StorageError

    services, client = live
    flag = client.flag(KEY)
    treated = users(5000, treatment=True, n=12)
    for user in treated[:10]:
        with flag.track(user):
            pass
    store = client._recorder._metrics_store()
    real_flush = store.flush
    failures = [StorageError(ConnectionError("away"))]

    def fails_once(batch: Any, **kwargs: Any) -> None:
        if failures:
            raise failures.pop()
        real_flush(batch, **kwargs)

    monkeypatch.setattr(store, "flush", fails_once)
    client.flush()  # failed: the batch is kept by the parent
    held, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with client._recorder._lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    assert held.wait(10)
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's exit code is the assertion
        try:
            with flag.track(treated[10]):
                pass
            client.flush()  # neither hangs on the parent's lock nor resends the parent's batch
            os._exit(0)
        finally:
            os._exit(4)
    release.set()
    holder.join()
    ended: list[int] = []

    def child_ended() -> bool:
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid:
            ended.append(os.waitstatus_to_exitcode(status))
        return bool(pid)

    if not wait_until(child_ended, timeout=30):
        os.kill(child, 9)
        os.waitpid(child, 0)
        pytest.fail("the forked child hung on the parent's lock")
    assert ended == [0]
    with flag.track(treated[11]):
        pass
    client.flush()  # the kept batch, then one more
    assert wait_until(lambda: stage(services).treatment.samples == 12)
    assert stage(services).treatment.samples == 12
