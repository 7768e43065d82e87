"""Business values (DESIGN §4.1): observe() and record(values=) into the user's arm, Welford in
the SDK, Chan's merge in Redis, bad input dropped and counted, an outage waited out."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Iterator
from typing import Any

import pytest

from rollout import RolloutClient
from rollout.core.bounds import Moments
from rollout.core.defaults import VALUE_NAMES_PER_FLAG
from rollout.core.evidence import chan
from rollout.services.container import Services
from rollout.storage.redis_process import RedisProcess
from tests.sdk.test_tracking import KEY, stage, users
from tests.support import wait_until


@pytest.fixture
def live(real_services: Services, real_url: str) -> Iterator[Any]:
    real_services.flags.create(KEY, actor="t", allow=["qa-alice"], stages=[{"percent": 50}])
    real_services.flags.advance(KEY, actor="t")
    client = RolloutClient(real_url, flush_interval=60, environ={})
    yield real_services, client
    client.close()


def moments(values: list[float]) -> tuple[int, float, float]:
    mean = statistics.fmean(values)
    return len(values), mean, sum((v - mean) ** 2 for v in values)


def test_observations_land_in_the_users_arm_as_count_mean_and_m2(live: Any) -> None:
    services, client = live
    flag = client.flag(KEY)
    rng = random.Random(7)
    treated = [rng.gauss(0.9, 0.5) for _ in range(40)]
    control = [rng.gauss(1.0, 0.5) for _ in range(60)]
    for user, value in zip(users(5000, treatment=True, n=40), treated, strict=True):
        flag.observe(user, "improvement_delta", value)
    for user, value in zip(users(5000, treatment=False, n=60), control, strict=True):
        flag.record(user, values={"improvement_delta": value})
    flag.observe("qa-alice", "improvement_delta", 99.0)  # allowed: not in an arm
    client.flush()
    evidence = stage(services)
    t, c = (
        evidence.treatment.values["improvement_delta"],
        evidence.control.values["improvement_delta"],
    )
    for got, want in ((t, moments(treated)), (c, moments(control))):
        assert got.n == want[0]
        assert got.mean == pytest.approx(want[1], rel=1e-12)
        assert got.m2 == pytest.approx(want[2], rel=1e-12)
    # An observation is not an outcome sample; record() with values is one sample.
    assert (evidence.treatment.samples, evidence.control.samples) == (0, 60)


def test_flushes_and_processes_merge_exactly_with_chans_formula(live: Any, real_url: str) -> None:
    """Three flushes of one process and one of another, with means far apart: the stored
    moments are those of the union, which adding means or M2s would not give."""
    services, client = live
    other = RolloutClient(real_url, flush_interval=60, environ={})
    try:
        everyone = users(5000, treatment=True, n=200)
        seen: list[float] = []
        for part, (sdk, centre) in enumerate(
            [(client, 1e6), (client, 1.0), (other, -3.0), (client, 1e6 + 0.5)]
        ):
            handle = sdk.flag(KEY)
            for user in everyone[part * 50 : part * 50 + 50]:
                value = centre + (hash(user) % 1000) / 1000
                handle.observe(user, "latency_budget", value)
                seen.append(value)
            sdk.flush()
        got = stage(services).treatment.values["latency_budget"]
        n, mean, m2 = moments(seen)
        assert got.n == n
        assert got.mean == pytest.approx(mean, rel=1e-12)
        assert got.m2 == pytest.approx(m2, rel=1e-9)
        # The window's reading merges windows with the same formula.
        window = services.gates.evidence(services.flags.get(KEY)).windows
        assert all(w.treatment.values["latency_budget"].n == n for w in window.values())
    finally:
        other.close()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("improvement_delta", math.nan, id="nan"),
        pytest.param("improvement_delta", math.inf, id="inf"),
        pytest.param("improvement_delta", -math.inf, id="minus-inf"),
        pytest.param("improvement_delta", "0.5", id="a-string"),
        pytest.param("improvement_delta", None, id="none"),
        pytest.param("improvement_delta", True, id="a-bool"),
        pytest.param("improvement_delta", 1e308, id="1e308-whose-square-overflows"),
        pytest.param("improvement_delta", 10**400, id="an-int-too-big-for-a-float"),
        pytest.param("Improvement", 1.0, id="capital-letter"),
        pytest.param("1st", 1.0, id="leading-digit"),
        pytest.param("a" * 65, 1.0, id="65-characters"),
        pytest.param("has space", 1.0, id="space"),
        pytest.param(["x"], 1.0, id="unhashable-name"),
        pytest.param(None, 1.0, id="no-name"),
    ],
)
def test_bad_input_is_dropped_and_counted_never_raised_never_sent(
    live: Any, name: Any, value: Any
) -> None:
    services, client = live
    flag = client.flag(KEY)
    user = users(5000, treatment=True, n=1)[0]
    flag.observe(user, "improvement_delta", 2.0)  # a name seen already: the fast path
    flag.observe(user, name, value)
    if isinstance(name, list):  # no dict can hold it: a second observe() instead
        flag.observe(user, name, value)
    else:
        flag.record(user, values={name: value})
    flag.record(user, values=[("not", "a mapping")])  # type: ignore[arg-type]
    assert client._recorder.values.dropped == 3
    client.flush()
    got = stage(services).treatment.values
    assert set(got) == {"improvement_delta"}
    assert got["improvement_delta"] == Moments(1, 2.0, 0.0)
    assert services.gates.metrics.sdk_values_dropped() == 3


def test_ints_and_other_real_numbers_count(live: Any) -> None:
    services, client = live
    flag = client.flag(KEY)
    user = users(5000, treatment=True, n=1)[0]
    for value in (1, 2.0, 3):
        flag.observe(user, "items", value)
    client.flush()
    assert stage(services).treatment.values["items"] == Moments(3, 2.0, 2.0)


def test_at_most_twenty_names_per_flag_the_rest_dropped_and_counted(live: Any) -> None:
    services, client = live
    flag = client.flag(KEY)
    user = users(5000, treatment=True, n=1)[0]
    for i in range(VALUE_NAMES_PER_FLAG + 5):
        flag.observe(user, f"value_{i}", 1.0)
    flag.observe(user, "value_0", 1.0)  # a kept name still counts
    client.flush()
    got = stage(services).treatment.values
    assert set(got) == {f"value_{i}" for i in range(VALUE_NAMES_PER_FLAG)}
    assert got["value_0"].n == 2
    assert client._recorder.values.dropped == 5
    assert services.gates.metrics.sdk_values_dropped() == 5


def test_values_wait_out_an_outage(own_services: Services, own_redis_server: RedisProcess) -> None:
    own_services.flags.create(KEY, actor="t", stages=[{"percent": 50}])
    own_services.flags.advance(KEY, actor="t")
    with RolloutClient(own_redis_server.url, flush_interval=60, environ={}) as client:
        flag = client.flag(KEY)
        treated = users(5000, treatment=True, n=20)
        for i, user in enumerate(treated[:10]):
            flag.observe(user, "score", float(i))
        own_redis_server.stop()
        client.flush()  # fails quietly; the moments wait
        for i, user in enumerate(treated[10:]):
            flag.observe(user, "score", float(10 + i))
        client.flush()  # still down: both parts are held, merged
        own_redis_server.start()

        def stored() -> int:
            client.flush()
            found = stage(own_services).treatment.values.get("score")
            return found.n if found else 0

        assert wait_until(lambda: stored() == 20)
        got = stage(own_services).treatment.values["score"]
        assert got.mean == pytest.approx(9.5) and got.m2 == pytest.approx(665.0)


def test_chan_merge_matches_the_moments_of_the_union() -> None:
    rng = random.Random(3)
    parts = [
        [rng.gauss(mu, 2.0) for _ in range(size)] for mu, size in ((5, 10), (-1, 1), (1e9, 30))
    ]
    merged = chan(Moments(*moments(p)) for p in parts)
    n, mean, m2 = moments([v for p in parts for v in p])
    assert merged.n == n
    assert merged.mean == pytest.approx(mean, rel=1e-12)
    assert merged.m2 == pytest.approx(m2, rel=1e-9)
    assert chan([]) == Moments(0, 0.0, 0.0)
    assert chan([Moments(0, 0.0, 0.0), Moments(2, 1.0, 0.5)]) == Moments(2, 1.0, 0.5)
