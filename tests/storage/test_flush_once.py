"""A batch sent again (the SDK's retry, a Cluster client resending after a node died mid-flush)
is applied once: each stage's part carries the process's batch sequence and a marker in the
flag's slot says how far that process's batches already landed there."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from rollout.core.bounds import Moments
from rollout.core.errors import StorageError
from rollout.storage.keys import Keys
from rollout.storage.metrics import APPLY_FLUSH_SHA, Batch, MetricsStore
from rollout.storage.rollups import COARSE, FINE, SpanRead
from tests.fixtures_redis import topology_client

KEYS = Keys("fo")
EPOCH = 1_799_999_000_000
T0 = 1_800_000_000.0
# Two flags, on two different masters of the 3-master test Cluster (slots 6373 and 14503).
FLAGS = ("A", "C")


@pytest.fixture(params=["redis-server", "cluster"])
def client(request: pytest.FixtureRequest) -> Iterator[Any]:
    redis = topology_client(request, request.param)
    yield redis
    redis.close()


@pytest.fixture
def store(client: Any) -> MetricsStore:
    return MetricsStore(client, KEYS, 900, 7200)


def batch(sequence: int, samples: int = 10) -> Batch:
    out = Batch(sequence=sequence, dropped=2, values_dropped=1)
    for key in FLAGS:
        for arm in ("control", "treatment"):
            tally = out.tally(key, EPOCH, arm)
            tally.samples, tally.errors, tally.exposures = samples, 1, samples
            tally.errors_by_type = {"Boom": 1}
            tally.latency = {40: samples}
            tally.values = {"revenue": Moments(4, 2.5, 3.0)}
        out.memory_mb[(key, EPOCH)] = 12.5
    return out


def totals(store: MetricsStore, key: str) -> tuple[Any, ...]:
    evidence = store.evidence(key, EPOCH, now=T0, windows_ms=[60_000])
    arm, window = evidence.stage.treatment, evidence.windows[60_000].treatment
    spans = []
    for res in (FINE, COARSE):
        span = int(T0 // res.seconds)
        read = SpanRead(KEYS, res, key, EPOCH, span, span)
        pipe = store.redis.pipeline(transaction=False)
        read.queue(pipe)
        parts = read.parse(iter(pipe.execute()))
        counts, types = parts.spans, parts.types
        spans.append((counts[0].treatment[:3] if counts else None, types))
    return (
        arm.samples,
        arm.errors,
        arm.exposures,
        arm.errors_by_type,
        arm.values.get("revenue"),
        window.samples,
        window.values.get("revenue"),
        spans,
    )


def sdk_stats(store: MetricsStore) -> tuple[int, int]:
    return store.sdk_dropped(), store.sdk_values_dropped()


def test_a_batch_flushed_twice_counts_once(store: MetricsStore) -> None:
    store.flush(batch(1), now=T0, process="p1")
    once = {key: totals(store, key) for key in FLAGS}
    assert once["A"][:4] == (10, 1, 10, {"Boom": 1})
    store.flush(batch(1), now=T0, process="p1")  # the same batch again, as a retry sends it
    assert {key: totals(store, key) for key in FLAGS} == once
    assert sdk_stats(store) == (2, 1)
    # The next batch of that process, and the same sequence from another process, both count.
    store.flush(batch(2, samples=5), now=T0, process="p1")
    store.flush(batch(1, samples=5), now=T0, process="p2")
    after = totals(store, "A")
    assert after[:3] == (20, 3, 20) and after[4] == Moments(12, 2.5, 9.0)
    assert after[7][0][0] == (20, 3, 20)  # the packed 10-second history too
    assert sdk_stats(store) == (6, 3)


def test_a_batch_without_a_sequence_counts_each_time(store: MetricsStore) -> None:
    store.flush(batch(0), now=T0, process="p1")
    store.flush(batch(0), now=T0, process="p1")
    assert totals(store, "A")[:3] == (20, 2, 20)


def test_a_flush_that_failed_part_way_counts_once_when_sent_again(
    store: MetricsStore, client: Any
) -> None:
    """C's part fails (its marker key holds the wrong type), A's lands: the retry of the whole
    batch adds C's part and not A's again. On the Cluster A and C sit on different masters."""
    blocker = KEYS.flush_marker("C", EPOCH, "p1")
    client.hset(blocker, "x", "1")
    with pytest.raises(StorageError):
        store.flush(batch(1), now=T0, process="p1")
    assert totals(store, "A")[:3] == (10, 1, 10)
    assert totals(store, "C")[0] == 0  # nothing of C's part ran
    client.delete(blocker)
    store.flush(batch(1), now=T0, process="p1")
    assert totals(store, "A") == totals(store, "C")
    assert totals(store, "A")[:3] == (10, 1, 10)


def test_the_marker_lives_the_retention(store: MetricsStore, client: Any) -> None:
    store.flush(batch(3), now=T0, process="p1")
    marker = KEYS.flush_marker("A", EPOCH, "p1")
    assert client.get(marker) == "3" and 899 <= client.ttl(marker) <= 900


def test_a_script_unknown_to_the_node_is_sent_whole(store: MetricsStore, client: Any) -> None:
    client.script_flush()  # every primary's, on the Cluster
    assert client.script_exists(APPLY_FLUSH_SHA) == [False]
    store.flush(batch(1), now=T0, process="p1")
    assert totals(store, "A")[:3] == (10, 1, 10)
