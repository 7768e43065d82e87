"""The gates at production scale: a 3-day stage at 10%, read every second (issue 10, item 5).

Each figure is over seeded runs of one stage: 259,200 one-second looks, the treatment at 10 or 1
samples a second and control at nine times that. Two rule sets are read over the same kind of
runs: the always-valid bounds of ``rollout.core.bounds`` (new) and the fixed-z rules they replace
(Wilson z = 2.5 on the stage, 4.75 on a 60 s window; the baseline). Rare events (false kills,
false sample-ratio alarms) use 10,000 runs and are judged by the exact 95% upper bound of their
rate; the other figures use 1,000 runs. ``_stagesim`` says how 2.6e9 looks per figure stay cheap
without skipping any look.

What a false kill counts: a run in which the kill's necessary condition (the treatment's bound
past ``critical``, on the stage or on a window) held at some look. The comparison with control is
a further condition, so this over-counts kills; at the 1% control rate used here it is met at any
sample size where the first one is.

Targets (the bench exits 1 when the new rules miss one):
- false kills at a true 5% and 9% (critical 10%, control 1%) over the whole stage: < 1% each;
- a true 20% from the stage's start: killed within a median of 150 treatment samples, p99 ≤ 400;
- a sudden regression after 48 h healthy (1% -> 30%): killed within 30 s at 10 samples/s;
- a true 6-8% never offered an advance at the end of the bake in ≥ 99% of runs;
- sample ratio mismatch: a 10% -> 11% treatment share flagged within 50,000 samples of both arms
  together in ≥ 99% of runs; false alarms over a correct stage < 0.1%.

Run: ``.venv/bin/python bench/decisions.py [--runs 10000] [--seed 10] [--quick]``.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _latencysim as lat
from bench import _stagesim as sim
from rollout.core import bounds, sequential, stats

CRITICAL, WARN, CONTROL_RATE, MIN_SAMPLES = 0.10, 0.05, 0.01, 100
LOOKBACK = 6  # windows a 60 s gate looks back over (the newest one partial)
FIXED_STAGE_Z, FIXED_WINDOW_Z, FIXED_COMPARE_Z, WARN_Z = 2.5, 4.75, 3.5, 1.0
PRIOR = bounds.error_prior(CRITICAL)


# -- the two rule sets as boundaries ----------------------------------------------------------


def new_stage(x: int, n: int) -> bool:
    return n >= MIN_SAMPLES and bounds.above(x, n, CRITICAL, bounds.ERROR_ALPHA, PRIOR)


def new_restart(start: int, x: int, n: int) -> bool:
    if n < MIN_SAMPLES or x <= CRITICAL * n:
        return False
    level = sequential.spent_level(start, bounds.WINDOW_ALPHA)
    return sequential.log_mixture(x, n, CRITICAL, PRIOR) >= level


def fixed(z: float) -> Callable[[int, int], bool]:
    def fires(x: int, n: int) -> bool:
        return n >= MIN_SAMPLES and stats.wilson_interval(x, n, z)[0] >= CRITICAL

    return fires


def mixture_evidence(rate: float, prior: sequential.BetaPrior) -> Callable[..., np.ndarray]:
    return lambda x, n: sim.log_mixture(x, n, rate, prior.a, prior.b)


def wilson_low(z: float) -> Callable[..., np.ndarray]:
    """``stats.wilson_interval(...)[0]`` over arrays."""

    def low(x: np.ndarray, n: np.ndarray) -> np.ndarray:
        p = x / n
        z2 = z * z
        denominator = 1.0 + z2 / n
        centre = (p + z2 / (2 * n)) / denominator
        half = z * np.sqrt(p * (1.0 - p) / n + z2 / (4 * n * n)) / denominator
        return np.where(x == 0, 0.0, np.maximum(0.0, centre - half))

    return low


def stage_boundary(
    fires: Callable[[int, int], bool], trials: np.ndarray, z: float | None
) -> np.ndarray:
    """The stage's boundary: the new rule when ``z`` is None, else Wilson at ``z``."""
    if z is None:
        evidence, level = mixture_evidence(CRITICAL, PRIOR), math.log(1 / bounds.ERROR_ALPHA)
    else:
        evidence, level = wilson_low(z), CRITICAL
    return sim.boundary(evidence, level, trials, CRITICAL, MIN_SAMPLES, lambda i, x, n: fires(x, n))


def scan_boundaries(per_tick: int) -> list[np.ndarray]:
    """Fewest successes that could fire a restart at window j during window j+L."""
    windows = sim.TICKS // sim.WINDOW
    levels = np.array([sequential.spent_level(j, bounds.WINDOW_ALPHA) for j in range(windows)])
    out = []
    for lag in range(LOOKBACK):
        # The trials at the restart's most favourable second, but never below min_samples.
        n = max(sim.WINDOW * per_tick * lag + per_tick, MIN_SAMPLES)
        if n > sim.WINDOW * per_tick * (lag + 1):
            out.append(np.full(windows, sim.SENTINEL, dtype=np.int64))
            continue
        row = sim.boundary(
            mixture_evidence(CRITICAL, PRIOR),
            levels,
            np.full(windows, n),
            CRITICAL,
            MIN_SAMPLES,
            new_restart,  # (start, successes, trials): the level of each start is its own
        )
        out.append(row)
    return out


# -- figures ----------------------------------------------------------------------------------


@functools.cache
def boundaries(per_tick: int) -> dict[str, object]:
    trials = per_tick * np.arange(1, sim.TICKS + 1)
    trailing_trials = sim.WINDOW * per_tick * (LOOKBACK - 1) + per_tick * np.arange(1, 11)
    return {
        "stage": stage_boundary(new_stage, trials, None),
        "scan": scan_boundaries(per_tick),
        "fixed_stage": stage_boundary(fixed(FIXED_STAGE_Z), trials, FIXED_STAGE_Z),
        "fixed_window": stage_boundary(fixed(FIXED_WINDOW_Z), trailing_trials, FIXED_WINDOW_Z),
    }


def false_kills(
    rng: np.random.Generator, runs: int, rate: float, per_tick: int
) -> dict[str, sim.Crossings]:
    b = boundaries(per_tick)
    new = sim.stage_and_scan(rng, runs, per_tick, rate, b["stage"], b["scan"], new_restart)  # type: ignore[arg-type]
    old = sim.stage_and_scan(
        rng,
        runs,
        per_tick,
        rate,
        b["fixed_stage"],  # type: ignore[arg-type]
        None,
        None,
        trailing_min=b["fixed_window"],  # type: ignore[arg-type]
        lookback=LOOKBACK,
    )
    return {"new": new, "fixed": old}


CONTROL_PRIOR = bounds.control_prior(CRITICAL)


def lower_bounds(
    x: np.ndarray, n: np.ndarray, alpha: float, prior: sequential.BetaPrior = PRIOR
) -> np.ndarray:
    """Vectorised low end of ``sequential.proportion_bounds`` (bisection, as core does)."""
    level = math.log(1.0 / alpha)
    x = x.astype(np.float64)
    n = np.maximum(n.astype(np.float64), 1.0)
    low, high = np.zeros_like(x), x / n
    for _ in range(50):
        middle = (low + high) / 2
        rejected = sim.log_mixture(x, n, np.clip(middle, 1e-12, 1 - 1e-12), prior.a, prior.b)
        rejected = rejected >= level
        low, high = np.where(rejected, middle, low), np.where(rejected, high, middle)
    return np.where(x == 0, 0.0, high)


def upper_bounds(x: np.ndarray, n: np.ndarray, alpha: float) -> np.ndarray:
    """High end of control's bound: the low end of its misses' rate, under the mirrored prior."""
    mirrored = sequential.BetaPrior(1.0 - CONTROL_PRIOR.mean, CONTROL_PRIOR.size)
    return 1.0 - lower_bounds(n - x, n, alpha, mirrored)


def samples_to_kill(
    rng: np.random.Generator, runs: int, rate: float, per_tick: int, ticks: int
) -> dict[str, np.ndarray]:
    """Treatment samples at the first look where each rule set kills (inf when it never does)."""
    t = rng.binomial(per_tick, rate, size=(runs, ticks)).cumsum(axis=1)
    c = rng.binomial(9 * per_tick, CONTROL_RATE, size=(runs, ticks)).cumsum(axis=1)
    n = per_tick * np.arange(1, ticks + 1)
    cn = 9 * n
    result = {}
    stage_min = stage_boundary(new_stage, n, None)
    absolute = t >= stage_min[None, :]
    worse = lower_bounds(t, np.broadcast_to(n, t.shape), bounds.COMPARE_ALPHA) > upper_bounds(
        c, np.broadcast_to(cn, c.shape), bounds.COMPARE_ALPHA
    )
    result["new"] = _first(absolute & worse, n)
    fixed_min = stage_boundary(fixed(FIXED_STAGE_Z), n, FIXED_STAGE_Z)
    z = _two_proportion_z(t, n, c, cn)
    result["fixed"] = _first((t >= fixed_min[None, :]) & (z >= FIXED_COMPARE_Z), n)
    return result


def _two_proportion_z(t: np.ndarray, n: np.ndarray, c: np.ndarray, cn: np.ndarray) -> np.ndarray:
    pooled = (t + c) / (n + cn)
    var = pooled * (1 - pooled) * (1 / n + 1 / cn)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(var > 0, (t / n - c / cn) / np.sqrt(var), 0.0)


def _first(hit: np.ndarray, n: np.ndarray) -> np.ndarray:
    any_hit = hit.any(axis=1)
    return np.where(any_hit, n[hit.argmax(axis=1)], np.inf)


def regression_seconds(rng: np.random.Generator, runs: int, per_tick: int) -> dict[str, np.ndarray]:
    """Seconds from a 1% -> 30% regression 48 h into the stage until each rule set kills."""
    before = 48 * 3600
    after = 120
    offset = rng.integers(0, sim.WINDOW, size=runs)  # where in its window the change falls
    healthy = rng.binomial(per_tick * before, CONTROL_RATE, size=runs)
    control_before = rng.binomial(9 * per_tick * before, CONTROL_RATE, size=runs)
    seconds = {"new": np.full(runs, np.inf), "fixed": np.full(runs, np.inf)}
    for r in range(runs):
        span = offset[r] + after
        rates = np.where(np.arange(span) < offset[r], CONTROL_RATE, 0.30)
        ticks = rng.binomial(per_tick, rates)
        control = rng.binomial(9 * per_tick, CONTROL_RATE, size=span)
        first_window = (before - offset[r]) // sim.WINDOW  # the window the change falls in
        for k in range(offset[r], span):
            since = k - offset[r] + 1
            x = int(healthy[r] + ticks[: k + 1].sum())
            n = per_tick * (before - offset[r] + k + 1)
            cx = int(control_before[r] + control[: k + 1].sum())
            if math.isinf(seconds["new"][r]) and _new_kills(
                ticks, control, k, first_window, per_tick, x, n, cx, 9 * n
            ):
                seconds["new"][r] = since
            if math.isinf(seconds["fixed"][r]) and _fixed_kills(
                ticks, control, k, per_tick, x, n, cx, 9 * n
            ):
                seconds["fixed"][r] = since
            if not (math.isinf(seconds["new"][r]) or math.isinf(seconds["fixed"][r])):
                break
    return seconds


def _new_kills(ticks, control, k, first_window, per_tick, x, n, cx, cn) -> bool:  # type: ignore[no-untyped-def]
    if new_stage(x, n) and bounds.compare(x, n, cx, cn, bounds.COMPARE_ALPHA, CRITICAL).worse:
        return True
    # Restarts at the window boundaries within the look-back (the data before the change that
    # share its window count too: the window starts ``offset`` seconds before it).
    window_of_k = k // sim.WINDOW
    for lag in range(LOOKBACK):
        start = window_of_k - lag
        if start < 0:
            break
        lo = start * sim.WINDOW
        rx, rn = int(ticks[lo : k + 1].sum()), per_tick * (k + 1 - lo)
        if new_restart(first_window + start, rx, rn):
            alpha = math.exp(-sequential.spent_level(first_window + start, bounds.WINDOW_ALPHA))
            rcx = int(control[lo : k + 1].sum())
            if bounds.compare(rx, rn, rcx, 9 * rn, alpha, CRITICAL).worse:
                return True
    return False


def _fixed_kills(ticks, control, k, per_tick, x, n, cx, cn) -> bool:  # type: ignore[no-untyped-def]
    if fixed(FIXED_STAGE_Z)(x, n) and stats.two_proportion_z(x, n, cx, cn) >= FIXED_COMPARE_Z:
        return True
    lo = max(0, (k // sim.WINDOW - (LOOKBACK - 1)) * sim.WINDOW)
    wx, wn = int(ticks[lo : k + 1].sum()), per_tick * (k + 1 - lo)
    wcx = int(control[lo : k + 1].sum())
    return (
        fixed(FIXED_WINDOW_Z)(wx, wn)
        and stats.two_proportion_z(wx, wn, wcx, 9 * wn) >= FIXED_WINDOW_Z
    )


def advance_offered(rng: np.random.Generator, runs: int, rate: float, per_tick: int) -> float:
    """Share of runs whose stage reads ``pass`` (an advance offered) when the 3-day bake ends."""
    n = per_tick * sim.TICKS
    x = rng.binomial(n, rate, size=runs)
    offered = [stats.wilson_interval(int(v), n, WARN_Z)[0] < WARN for v in x]
    return float(np.mean(offered))


# -- sample ratio mismatch ---------------------------------------------------------------------


SRM_PRIOR = sequential.BetaPrior(0.1, bounds.SRM_PRIOR_SIZE)
SRM_LEVEL = math.log(1 / bounds.SRM_ALPHA)


def srm_fires(x: int, n: int) -> bool:
    """``bounds.split(x, n - x, 0.1).mismatch``, without building its result (checked below)."""
    return sequential.log_mixture(x, n, 0.1, SRM_PRIOR) >= SRM_LEVEL


def srm_detection(rng: np.random.Generator, runs: int, per_tick: int) -> float:
    """Share of runs at an 11% treatment share (expected 10%) flagged within 50,000 samples."""
    total_per_tick = 10 * per_tick
    ticks = 50_000 // total_per_tick
    x = rng.binomial(total_per_tick, 0.11, size=(runs, ticks)).cumsum(axis=1)
    n = total_per_tick * np.arange(1, ticks + 1)
    lm = sim.log_mixture(x, n, 0.1, 0.1 * bounds.SRM_PRIOR_SIZE, 0.9 * bounds.SRM_PRIOR_SIZE)
    return float((lm >= math.log(1 / bounds.SRM_ALPHA)).any(axis=1).mean())


def srm_false_alarms(rng: np.random.Generator, runs: int, per_tick: int) -> sim.Crossings:
    """Runs of a correct 10% split that ever raise a mismatch over the whole stage."""
    total_per_tick = 10 * per_tick
    trials = total_per_tick * np.arange(1, sim.TICKS + 1)
    evidence = mixture_evidence(0.1, SRM_PRIOR)
    high = sim.boundary(
        evidence, SRM_LEVEL, trials, 0.1, 0, lambda i, x, n: x > 0.1 * n and srm_fires(x, n)
    )
    # The low side as control's count (the treatment's misses): the same evidence, mirrored.
    low = sim.boundary(
        lambda y, n: evidence(n - y, n),
        SRM_LEVEL,
        trials,
        0.9,
        0,
        lambda i, y, n: y > 0.9 * n and srm_fires(n - y, n),
    )
    upper = sim.stage_and_scan(rng, runs, total_per_tick, 0.1, high, None, None)
    lower = sim.stage_and_scan(rng, runs, total_per_tick, 0.9, low, None, None)
    # Two separate sets of runs, one per side: their sum bounds a run's chance of either side.
    return sim.Crossings(runs, upper.fired + lower.fired)


# -- report ------------------------------------------------------------------------------------


def check_vectorised() -> None:
    """The vectorised mixture must be core's, to the last digits; the SRM shortcut, core's rule."""
    for x, n in ((1_000, 10_000), (1_100, 10_000), (5, 100)):
        assert srm_fires(x, n) == bounds.split(x, n - x, 0.1).mismatch
    for x, n in ((0, 10), (30, 150), (700, 5_000)):
        mine = float(sim.log_mixture(np.array(x), np.array(n), CRITICAL, PRIOR.a, PRIOR.b))
        assert abs(mine - sequential.log_mixture(x, n, CRITICAL, PRIOR)) < 1e-9


Verdict = Callable[[bool, str], str]


def error_figures(rng: np.random.Generator, rare: int, common: int, verdict: Verdict) -> None:
    print(f"3-day stage at 10%, 1 s ticks ({sim.TICKS:,} looks); control 9x; critical 10%, warn 5%")
    for per_tick in (10, 1):
        print(f"\n== {per_tick} treatment samples/s")
        for rate in (0.05, 0.09):
            started = time.perf_counter()
            got = false_kills(rng, rare, rate, per_tick)
            new, old = got["new"], got["fixed"]
            ok = new.upper95() < 0.01
            print(
                f"false kills at a true {rate:.0%} over {rare:,} runs: new {new.rate:.3%} "
                f"(95% bound {new.upper95():.3%}), fixed-z {old.rate:.3%} "
                f"(95% bound {old.upper95():.3%})  target < 1% -> "
                f"{verdict(ok, f'false kills {rate:.0%} at {per_tick}/s')}  "
                f"[{time.perf_counter() - started:.0f} s]"
            )
        ticks = 1_000 // per_tick
        killed = samples_to_kill(rng, common, 0.20, per_tick, ticks)
        for name, values in killed.items():
            median, p99 = np.percentile(values, 50), np.percentile(values, 99)
            line = (
                f"true 20% from the start, {name:>5}: samples to kill "
                f"median {median:.0f}, p99 {p99:.0f}"
            )
            if name == "new":
                ok = median <= 150 and p99 <= 400
                line += f"  target ≤ 150 / ≤ 400 -> {verdict(ok, f'20% kill at {per_tick}/s')}"
            print(line)
        for rate in (0.06, 0.07, 0.08):
            offered = advance_offered(rng, common, rate, per_tick)
            ok = offered <= 0.01
            print(
                f"true {rate:.0%}: advance offered at the end of the bake in {offered:.1%} of runs "
                f"target ≤ 1% -> {verdict(ok, f'{rate:.0%} advance at {per_tick}/s')}"
            )
    seconds = regression_seconds(rng, common, 10)
    for name, values in seconds.items():
        median, p99 = np.percentile(values, 50), np.percentile(values, 99)
        line = (
            f"\n1% -> 30% after 48 h at 10/s, {name:>5}: seconds to kill "
            f"median {median:.0f}, p99 {p99:.0f}"
        )
        if name == "new":
            line += f"  target median ≤ 30 s -> {verdict(median <= 30, 'regression after 48 h')}"
        print(line, end="")
    print()


def latency_figures(rng: np.random.Generator, rare: int, common: int, verdict: Verdict) -> None:
    print("\n== latency_ratio (critical 1.5x; lognormal, sigma 0.5, control median 20 ms)")
    lat.check_radius()
    for per_tick in (10, 1):
        killed = lat.timed_samples_to_kill(rng, common, 2.0, per_tick, 2_000 // per_tick)
        for name, values in killed.items():
            median = np.percentile(values, 50)
            line = (
                f"2x control at {per_tick}/s, {name:>5}: timed samples to kill median "
                f"{median:.0f}, p99 {np.percentile(values, 99):.0f}"
            )
            if name == "new":
                line += f"  target median ≤ 300 -> {verdict(median <= 300, 'latency 2x')}"
            print(line)
        for rule in ("new", "fixed"):
            estimate, bound = lat.false_kill_bound(rng, rare, 1.3, per_tick, rule)
            line = (
                f"1.3x control at {per_tick}/s, {rule:>5}: false kills over the stage at most "
                f"{estimate:.3%} (from 95% bounds: {bound:.3%})"
            )
            if rule == "new":
                line += f"  target < 1% -> {verdict(bound < 0.01, 'latency 1.3x')}"
            print(line)


def value_figures(rng: np.random.Generator, rare: int, common: int, verdict: Verdict) -> None:
    print("\n== value:improvement (Normal(1.0, 0.5) in control; relative change)")
    for per_tick in (10, 1):
        ticks = 20_000 // per_tick
        killed = lat.values_to_kill(rng, common, 0.10, 0.05, per_tick, ticks)
        median = np.percentile(killed, 50)
        print(
            f"10% drop (critical -5%) at {per_tick}/s: observations to kill median {median:.0f}, "
            f"p99 {np.percentile(killed, 99):.0f}  target median ≤ 3,000 -> "
            f"{verdict(median <= 3_000, f'value 10% drop at {per_tick}/s')}"
        )
        alarms = lat.value_false_kills(rng, rare, 0.01, 0.05, per_tick)
        print(
            f"1% drop at {per_tick}/s, whole stage: killed in {alarms.rate:.3%} of {rare:,} runs "
            f"(95% bound {alarms.upper95():.3%})  target < 1% -> "
            f"{verdict(alarms.upper95() < 0.01, f'value 1% drop at {per_tick}/s')}"
        )


def srm_figures(rng: np.random.Generator, rare: int, common: int, verdict: Verdict) -> None:
    print("\n== sample ratio mismatch (exposures; expected treatment share 10%)")
    for per_tick in (10, 1):
        detected = srm_detection(rng, common, per_tick)
        print(
            f"11% share at {per_tick * 10}/s in all: flagged within 50,000 samples in "
            f"{detected:.1%} of {common:,} runs  target ≥ 99% -> "
            f"{verdict(detected >= 0.99, 'srm detection')}"
        )
        alarms = srm_false_alarms(rng, rare, per_tick)
        print(
            f"correct split at {per_tick * 10}/s, whole stage: false alarms {alarms.rate:.3%} "
            f"(95% bound {alarms.upper95():.3%}) target < 0.1% -> "
            f"{verdict(alarms.upper95() < 0.001, 'srm false alarms')}"
        )


SECTIONS: dict[str, Callable[..., None]] = {
    "errors": error_figures,
    "latency": latency_figures,
    "values": value_figures,
    "srm": srm_figures,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="runs for rare-event rates")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="one tenth of the runs")
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma-separated sections of {list(SECTIONS)}"
    )
    args = parser.parse_args()
    rare = args.runs // (10 if args.quick else 1)
    common = max(rare // 10, 100)
    rng = np.random.default_rng(args.seed)
    check_vectorised()
    misses: list[str] = []

    def verdict(ok: bool, what: str) -> str:
        if not ok:
            misses.append(what)
        return "PASS" if ok else "MISS"

    for name in args.only.split(","):
        if name not in SECTIONS:
            parser.error(f"--only: no section {name!r} (one of {', '.join(SECTIONS)})")
        SECTIONS[name](rng, rare, common, verdict)
    if misses:
        print("\nMISSED: " + "; ".join(misses))
        return 1
    print("\nall targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
