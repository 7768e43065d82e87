"""Vectorised simulation of a 3-day stage read every second (bench/decisions.py's engine).

A stage of 259,200 one-second looks, over 10,000 seeded runs, is 2.6e9 looks: too many to read
one by one, but every rule here is a boundary on counts. The boundary is computed once per rule
from the rule's own code (``rollout.core``), and the runs are then simulated exactly, coarse first:
10-second window totals are drawn as binomials, and only the windows where the boundary *could* be
crossed (the counts at the window's end against the boundary at its first second) are refined into
per-second counts, drawn given the window's total (a uniform split of its successes over its
trials, which is their exact conditional law). Nothing that can cross is skipped: the rules'
evidence grows with successes and shrinks with trials, so a window that cannot cross at its most
favourable corner cannot cross at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import betaln

TICKS = 3 * 24 * 3600
WINDOW = 10  # seconds per metric window (storage's)


def log_mixture(
    x: np.ndarray, n: np.ndarray, p: float | np.ndarray, a: float, b: float
) -> np.ndarray:
    """``sequential.log_mixture`` over arrays (checked against it in ``check_vectorised``)."""
    x = np.asarray(x, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    return betaln(a + x, b + n - x) - betaln(a, b) - x * np.log(p) - (n - x) * np.log1p(-p)


SENTINEL = np.iinfo(np.int64).max // 4


def boundary(
    evidence: Callable[[np.ndarray, np.ndarray], np.ndarray],
    level: float | np.ndarray,
    trials: np.ndarray,
    rate: float,
    min_trials: int,
    fires: Callable[[int, int, int], bool],
) -> np.ndarray:
    """Per trial count, the fewest successes at which a rule fires (``SENTINEL`` when none),
    for every count at once: bisection over successes, for rules of the form "more than
    ``rate`` and ``evidence >= level``" (evidence rising with successes).

    ``evidence`` is the vectorised twin of the scalar rule ``fires(index, successes, trials)``;
    200 of the answers are checked against ``fires`` itself, so a twin that drifts from core's
    code fails loudly.
    """
    n = trials.astype(np.int64)
    lo = np.floor(rate * n).astype(np.int64)  # never fires: not above the rate
    hi = n.copy()
    ok = (n >= min_trials) & (n > lo) & (evidence(hi, n) >= level)
    for _ in range(64):
        if not np.any(hi - lo > 1):
            break
        mid = (lo + hi) // 2
        fire = (mid > rate * n) & (evidence(mid, n) >= level)
        hi = np.where(fire, mid, hi)
        lo = np.where(fire, lo, mid)
    out = np.where(ok, hi, SENTINEL)
    picks = np.random.default_rng(0).choice(len(n), size=min(200, len(n)), replace=False)
    for i in picks.tolist():
        x, trials_i = int(out[i]), int(n[i])
        if x != SENTINEL:
            assert fires(i, x, trials_i) and not fires(i, x - 1, trials_i), i
        else:
            assert not fires(i, trials_i, trials_i), i
    return out


@dataclass
class Crossings:
    runs: int
    fired: int

    @property
    def rate(self) -> float:
        return self.fired / self.runs

    def upper95(self) -> float:
        """Exact one-sided 95% upper bound of the rate (Clopper-Pearson)."""
        from scipy.stats import beta

        if self.fired == self.runs:
            return 1.0
        return float(beta.ppf(0.95, self.fired + 1, self.runs - self.fired))


def split_window(rng: np.random.Generator, total: int, per_tick: int) -> np.ndarray:
    """Per-second successes of one window, given its total: an exact conditional draw."""
    slots = rng.choice(per_tick * WINDOW, size=total, replace=False)
    return np.bincount(slots // per_tick, minlength=WINDOW)


def stage_and_scan(
    rng: np.random.Generator,
    runs: int,
    per_tick: int,
    rate: float,
    stage_min: np.ndarray,
    scan_min: list[np.ndarray] | None,
    scan_fires: Callable[[int, int, int], bool] | None,
    trailing_min: np.ndarray | None = None,
    lookback: int = 6,
    chunk: int = 500,
) -> Crossings:
    """Runs (of ``runs``) in which a stage boundary, a restarted-window scan, or a trailing-window
    boundary fires at some second of a whole stage at a constant true ``rate``.

    ``stage_min[t]``: fewest cumulative successes that fire at second ``t`` (``per_tick * (t+1)``
    trials). ``scan_min[L][j]``: fewest successes over windows ``j..j+L`` that could fire a restart
    at ``j`` during window ``j+L`` (trials at their fewest, ``WINDOW*per_tick*L + per_tick``);
    ``scan_fires(j, x, n)`` decides exactly. ``trailing_min[k]``: fewest successes over the
    trailing ``lookback`` windows that fire with ``k+1`` seconds of the newest window seen.
    """
    windows = TICKS // WINDOW
    per_window = per_tick * WINDOW
    # The stage boundary at each window's first second: the lowest it gets inside the window.
    stage_floor = stage_min[::WINDOW]
    fired_runs = 0
    for begin in range(0, runs, chunk):
        size = min(chunk, runs - begin)
        counts = rng.binomial(per_window, rate, size=(size, windows)).astype(np.int32)
        ends = np.cumsum(counts, axis=1, dtype=np.int64)
        padded = np.concatenate([np.zeros((size, 1), dtype=np.int64), ends], axis=1)
        fired = np.zeros(size, dtype=bool)
        candidates = ends >= stage_floor[None, :]
        splits: dict[tuple[int, int], np.ndarray] = {}

        def ticks_of(
            run: int,
            w: int,
            splits: dict[tuple[int, int], np.ndarray] = splits,
            counts: np.ndarray = counts,
        ) -> np.ndarray:
            # One split per window and run, shared by every rule that refines it.
            key = (run, w)
            if key not in splits:
                splits[key] = split_window(rng, int(counts[run, w]), per_tick)
            return splits[key]

        # Run by run, candidates in time order, until the first firing: a common event costs
        # one refinement per run, a rare one a few in all.
        for run in np.flatnonzero(candidates.any(axis=1)).tolist():
            for w in np.flatnonzero(candidates[run]).tolist():
                before = int(ends[run, w] - counts[run, w])
                cumulative = before + np.cumsum(ticks_of(run, w))
                if np.any(cumulative >= stage_min[w * WINDOW : (w + 1) * WINDOW]):
                    fired[run] = True
                    break
        if scan_min is not None and scan_fires is not None:
            for lag in range(lookback):
                sums = padded[:, lag + 1 :] - padded[:, : windows - lag]
                hits = (sums >= scan_min[lag][None, : windows - lag]) & ~fired[:, None]
                for run, j in zip(*np.nonzero(hits), strict=True):
                    if fired[run]:
                        continue  # fired at an earlier hit of this lag
                    w = j + lag
                    prior_x = int(sums[run, j] - counts[run, w])
                    partial = np.cumsum(ticks_of(run, w))
                    for k in range(WINDOW):
                        n = per_window * lag + per_tick * (k + 1)
                        if scan_fires(int(j), prior_x + int(partial[k]), n):
                            fired[run] = True
                            break
        if trailing_min is not None:
            sums = padded[:, lookback:] - padded[:, : windows - lookback + 1]
            hits = (sums >= trailing_min.min()) & ~fired[:, None]
            for run, i in zip(*np.nonzero(hits), strict=True):
                if fired[run]:
                    continue
                w = i + lookback - 1
                older = int(sums[run, i] - counts[run, w])
                partial = np.cumsum(ticks_of(run, w))
                if np.any(older + partial >= trailing_min):
                    fired[run] = True
        fired_runs += int(fired.sum())
    return Crossings(runs, fired_runs)
