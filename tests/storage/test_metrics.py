"""MetricsStore against a real redis-server: retention, sliding windows, memory across processes.

Times are passed in as ``now`` (epoch seconds); nothing here waits on a real clock.
"""

from __future__ import annotations

from typing import Any

import pytest

from rollout.storage.keys import Keys
from rollout.storage.metrics import WINDOW_SECONDS, Batch, MetricsStore, window_of

KEYS = Keys("mt")
EPOCH = 1_799_999_000_000  # the stage's stage_started_at (ms)
T0 = 1_800_000_000.0  # a window boundary: T0 // 10 is whole
RETENTION = 900
HISTORY = 7200


@pytest.fixture
def store(real_redis: Any) -> MetricsStore:
    return MetricsStore(real_redis, KEYS, RETENTION, HISTORY)


def outcomes(treatment: int, control: int = 0, *, errors: int = 0) -> Batch:
    """One process's flush: ``treatment`` samples (``errors`` of them errors), ``control``."""
    batch = Batch()
    for arm, samples in (("treatment", treatment), ("control", control)):
        if samples:
            tally = batch.tally("F", EPOCH, arm)
            tally.samples = samples
            tally.errors = errors if arm == "treatment" else 0
            tally.latency = {40: samples}
    return batch


def flag_keys(redis: Any) -> list[str]:
    return sorted(redis.scan_iter(match=f"{KEYS.prefix}:{{F}}:*"))


def windowed(names: list[str]) -> list[str]:
    """The keys that expire on the windows' retention: windows and the 10-second history."""
    return [n for n in names if n.split(":")[2] == "w" or n.split(":")[2].startswith("hf")]


def test_every_metrics_key_has_its_lifetime(store: MetricsStore, real_redis: Any) -> None:
    batch = outcomes(5, 3, errors=1)
    batch.tally("F", EPOCH, "treatment").errors_by_type["Boom"] = 1
    batch.memory_mb[("F", EPOCH)] = 12.0
    store.flush(batch, now=T0, process="p1")
    names = flag_keys(real_redis)
    window, span, rollup = int(T0 // WINDOW_SECONDS), int(T0 // 10), int(T0 // 300)
    # Counters are packed; an arm's hashes exist once it has an error type (or a value).
    stage = [
        KEYS.stage_counts("F", EPOCH),
        KEYS.stage_metrics("F", EPOCH, "treatment"),
        KEYS.memory("F", EPOCH),
    ]
    fine = [
        KEYS.window_metrics("F", EPOCH, window, "treatment"),
        KEYS.history_counts("F", "f", EPOCH, span),
        KEYS.history_types("F", "f", EPOCH, span // 360),
        KEYS.history_memory("F", "f", EPOCH, span // 360),
    ]
    coarse = [
        KEYS.history_counts("F", "c", EPOCH, rollup),
        KEYS.history_types("F", "c", EPOCH, rollup // 288),
        KEYS.history_memory("F", "c", EPOCH, rollup // 288),
    ]
    assert names == sorted(stage + fine + coarse)
    # The stage's running total and memory gauge never expire while the stage lasts.
    assert all(real_redis.ttl(name) == -1 for name in stage)
    # TTL counts down in whole seconds; a second may pass between the write and the read.
    assert all(RETENTION - 1 <= real_redis.ttl(name) <= RETENTION for name in fine)
    assert all(HISTORY - 1 <= real_redis.ttl(name) <= HISTORY for name in coarse)


def test_a_key_gets_its_retention_when_a_flush_creates_it(
    store: MetricsStore, real_redis: Any
) -> None:
    batch = outcomes(1)
    batch.memory_mb[("F", EPOCH)] = 1.0
    store.flush(batch, now=T0, process="p1")
    expiring = [n for n in flag_keys(real_redis) if real_redis.ttl(n) > 0]
    assert windowed(expiring) and len(expiring) > len(windowed(expiring))
    for name in expiring:
        real_redis.expire(name, 500)  # as if most of the retention had gone by
    # The same window and stage again: adding to keys that exist leaves their TTL (one EXPIRE
    # per key and flush saved; a key is written only during its own span).
    store.flush(batch, now=T0, process="p1")
    assert all(0 < real_redis.ttl(name) <= 500 for name in expiring)
    # Once expired, the next flush creates the key again, with the whole retention.
    real_redis.delete(*expiring)
    store.flush(batch, now=T0, process="p1")
    assert all(real_redis.ttl(name) >= RETENTION - 1 for name in expiring)


def test_a_new_field_in_a_key_renews_its_retention(store: MetricsStore, real_redis: Any) -> None:
    def typed(name: str) -> Batch:
        batch = outcomes(1, errors=1)
        batch.tally("F", EPOCH, "treatment").errors_by_type[name] = 1
        return batch

    store.flush(typed("Boom"), now=T0, process="p1")
    window = KEYS.window_metrics("F", EPOCH, window_of(T0), "treatment")
    real_redis.expire(window, 500)
    store.flush(typed("Boom"), now=T0, process="p1")
    assert 0 < real_redis.ttl(window) <= 500
    store.flush(typed("Timeout"), now=T0, process="p1")  # a field the window lacked
    assert real_redis.ttl(window) >= RETENTION - 1
    assert store.evidence("F", EPOCH, now=T0, windows_ms=[10_000]).windows[
        10_000
    ].treatment.errors_by_type == {"Boom": 2, "Timeout": 1}


def test_a_retention_below_a_minute_is_raised_to_one(real_redis: Any) -> None:
    MetricsStore(real_redis, KEYS, 5, 5).flush(outcomes(1), now=T0, process="p1")
    ttls = {real_redis.ttl(name) for name in flag_keys(real_redis)}
    assert ttls - {-1} <= {59, 60} and -1 in ttls  # -1: the stage total


def test_a_window_covers_only_its_trailing_seconds(store: MetricsStore) -> None:
    store.flush(outcomes(100, errors=100), now=T0, process="p1")  # 75 s before the read
    store.flush(outcomes(20, 7), now=T0 + 30, process="p1")  # 45 s before
    store.flush(outcomes(4, 1), now=T0 + 65, process="p2")  # the window before the current
    store.flush(outcomes(3, 2), now=T0 + 70, process="p2")  # the current window
    evidence = store.evidence("F", EPOCH, now=T0 + 75, windows_ms=[60_000, 10_000, 15_000])
    minute, ten, fifteen = (evidence.windows[ms] for ms in (60_000, 10_000, 15_000))
    assert (minute.treatment.samples, minute.treatment.errors) == (27, 0)
    assert minute.control.samples == 10 and minute.treatment.latency == {40: 27}
    assert (ten.treatment.samples, ten.control.samples) == (3, 2)
    # Windows are whole 10-second buckets: 15 s reads the current one and the one before.
    assert (fifteen.treatment.samples, fifteen.control.samples) == (7, 3)
    assert (evidence.stage.treatment.samples, evidence.stage.treatment.errors) == (127, 100)
    assert evidence.stage.control.samples == 10


def test_a_window_moves_on_with_now(store: MetricsStore) -> None:
    store.flush(outcomes(10), now=T0, process="p1")
    at = {
        later: store.evidence("F", EPOCH, now=T0 + later, windows_ms=[60_000])
        for later in (0, 59, 60, 600)
    }
    assert [at[s].windows[60_000].treatment.samples for s in (0, 59, 60, 600)] == [10, 10, 0, 0]
    assert {at[s].stage.treatment.samples for s in at} == {10}  # the stage total stays


def test_memory_is_the_highest_report_of_any_process(store: MetricsStore) -> None:
    def report(process: str, megabytes: float) -> None:
        batch = Batch()
        batch.memory_mb[("F", EPOCH)] = megabytes
        store.flush(batch, now=T0, process=process)

    def memory() -> float | None:
        return store.evidence("F", EPOCH, now=T0, windows_ms=[]).memory_mb

    assert memory() is None
    report("host-a:1", 30.0)
    report("host-b:2", 80.5)
    report("host-c:3", 12.0)
    assert memory() == 80.5
    report("host-a:1", 40.0)  # a process's newer report replaces its own older one
    assert memory() == 80.5
    report("host-b:2", 5.0)
    assert memory() == 40.0


def test_the_window_series_numbers_windows_from_the_stage_start(store: MetricsStore) -> None:
    """The restart scan needs each 10-second window of the look-back with its index since the
    stage began (its alpha spending), oldest first, read in the same single round trip."""
    store.flush(outcomes(5, 1, errors=1), now=T0 + 50, process="p1")
    store.flush(outcomes(7, 3, errors=2), now=T0 + 70, process="p1")
    evidence = store.evidence("F", EPOCH, now=T0 + 75, windows_ms=[30_000])
    first = int(EPOCH / 1000 // WINDOW_SECONDS)
    current = int((T0 + 75) // WINDOW_SECONDS)
    series = evidence.window_series[30_000]
    assert [w.index for w in series] == [current - 2 - first, current - 1 - first, current - first]
    assert [(w.treatment.samples, w.treatment.errors, w.control.samples) for w in series] == [
        (5, 1, 1),
        (0, 0, 0),
        (7, 2, 3),
    ]
    total = evidence.windows[30_000].treatment
    assert (total.samples, total.errors) == (12, 3)


def test_a_window_series_never_reaches_before_the_stage(store: MetricsStore) -> None:
    start = int(T0 * 1000)  # a stage that began at T0: 15 s later it has two windows
    evidence = store.evidence("F", start, now=T0 + 15, windows_ms=[60_000])
    assert [w.index for w in evidence.window_series[60_000]] == [0, 1]


def test_business_values_go_to_the_history_at_both_resolutions(
    store: MetricsStore, real_redis: Any
) -> None:
    from rollout.core.bounds import Moments

    batch = outcomes(3)
    batch.tally("F", EPOCH, "treatment").values = {"delta": Moments(3, 0.5, 0.25)}
    store.flush(batch, now=T0, process="p1")
    batch.sequence = 0
    store.flush(batch, now=T0 + 1, process="p2")  # another process, the same spans
    fine = KEYS.history_values("F", "f", EPOCH, int(T0 // 10) // 360)
    coarse = KEYS.history_values("F", "c", EPOCH, int(T0 // 300) // 288)
    assert RETENTION - 1 <= real_redis.ttl(fine) <= RETENTION
    assert HISTORY - 1 <= real_redis.ttl(coarse) <= HISTORY
    span = int(T0 // 10)
    held = real_redis.hgetall(fine)
    assert set(held) == {f"{span}:t:delta:n", f"{span}:t:delta:mean", f"{span}:t:delta:m2"}
    assert (held[f"{span}:t:delta:n"], float(held[f"{span}:t:delta:mean"])) == ("6", 0.5)
    assert float(held[f"{span}:t:delta:m2"]) == 0.5  # two equal means: M2s add


def test_an_sdk_before_the_packed_layout_counts_once(store: MetricsStore, real_redis: Any) -> None:
    """An SDK not yet upgraded wrote its counters to the window's hash and to the window's
    10-second span: a window reads the span only. The stage's hash counters (a stage that began
    before the upgrade) are added to the packed total."""
    store.flush(outcomes(100, errors=5), now=T0, process="new")
    window = KEYS.window_metrics("F", EPOCH, window_of(T0), "treatment")
    for name, count in (("n", 100), ("e", 5), ("b:40", 100)):
        real_redis.hincrby(window, name, count)  # what the old SDK wrote beside the span
    real_redis.hincrby(KEYS.stage_metrics("F", EPOCH, "treatment"), "n", 30)
    evidence = store.evidence("F", EPOCH, now=T0, windows_ms=[10_000])
    treatment = evidence.windows[10_000].treatment
    assert (treatment.samples, treatment.errors, treatment.latency) == (100, 5, {40: 100})
    assert evidence.stage.treatment.samples == 130


def test_a_flush_after_the_stage_ended_adds_to_keys_that_expire(
    store: MetricsStore, real_redis: Any
) -> None:
    from rollout.storage.history import HistoryStore

    HistoryStore(real_redis, KEYS, HISTORY).end_stage("F", EPOCH)  # before any flush came
    late = outcomes(2, 3, errors=1)
    late.tally("F", EPOCH, "control").errors_by_type["Boom"] = 1
    late.memory_mb[("F", EPOCH)] = 4.0
    store.flush(late, now=T0, process="late")
    names = [
        KEYS.stage_counts("F", EPOCH),
        KEYS.stage_metrics("F", EPOCH, "control"),
        KEYS.stage_metrics("F", EPOCH, "treatment"),
        KEYS.memory("F", EPOCH),
    ]
    assert all(0 < real_redis.ttl(name) <= HISTORY for name in names)
    evidence = store.evidence("F", EPOCH, now=T0, windows_ms=[])
    assert (evidence.stage.treatment.samples, evidence.stage.control.samples) == (2, 3)
    assert evidence.stage.control.errors_by_type == {"Boom": 1} and evidence.memory_mb == 4.0
    assert HistoryStore(real_redis, KEYS, HISTORY).end_stage("G", EPOCH) is None
    assert store.evidence("G", EPOCH, now=T0, windows_ms=[]).memory_mb is None
