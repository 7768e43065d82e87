"""Seeded simulation of the gate math and ``decide`` over one stage (issue 4, item 8).

One run is one stage at 10%, read with the reference ``error_rate`` gate (warn 5%, critical 10%,
min_samples 100, window 60 s):
- treatment outcomes arrive in batches of 50, control in batches of 450 (nine times the volume);
- after every batch the gates are read (``read_gates``) and the controller decides (``decide``),
  up to 5,000 treatment samples (100 reads); a kill ends the run;
- the stage reading sees every sample since the stage began. The window is modelled: a batch
  arrives every 30 s, so the 60 s window holds the last two batches, 100 treatment samples: exactly
  the gate's ``min_samples``, the noisiest window the gate will read;
- the stage's bake is over from the start and its ``min_samples`` is 1,000, so from the 20th read
  on the controller may offer to advance. ``auto_advance`` is off and nobody approves, so the
  stage keeps going: every run gets all 100 looks unless killed, the worst case for false kills.

Figures and targets:
- samples until the kill at a true treatment error rate of 20% (control 1%): median ≤ 150,
  99th percentile ≤ 300 (a run never killed counts as infinitely slow);
- false kills over healthy runs at a true 5% (control 1%): < 1%;
- runs at a true 8% (control 1%) that hold, neither killed nor ever offered an advance: ≥ 99%.
  This is the strict reading: 8% is above ``warn``, so an offer to advance counts as a miss too.

Tuning (the z values live in ``rollout.core.gates.STRICTNESS``):
- The stage's kill bound is a Wilson lower bound at z = 2.5. The 8% runs fix its floor: their false
  kills happen in the first few hundred samples, where the observed rate is noisy, and at z = 2.2
  0.4-0.6% of them die. The 20% runs fix its ceiling: at z = 2.75, 0.85% are still alive after
  300 samples (the p99 target allows 1%), at z = 3 the p99 is 350. A Bonferroni bound over 100
  looks (z = 3.7) would be safe but far too slow; it is also unnecessary, because looks at a
  cumulative count are strongly correlated and a rate below ``critical`` drifts away from the
  bound as samples grow.
- The window's kill bound is z = 4.75: each window is a fresh, independent look (over 1,000 a day
  in production), so it may kill only on overwhelming evidence; here it rarely decides a kill.
- ``warn`` uses z = 1.0, so at 8% the stage warns (and holds) by the time it has its 1,000
  samples: with z = 2.5 for ``warn`` too, 8% of the 8% runs would be offered an advance.

Run: ``.venv/bin/python bench/decisions.py [--runs 1000] [--seed 4]``; exits 1 if a target is
missed.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass
from random import Random

from rollout.core.decide import Action, decide
from rollout.core.evidence import Arms, ArmStats, Evidence
from rollout.core.gates import read_gates
from rollout.core.model import Flag, Gate, Stage, State

BATCH = 50
CONTROL_BATCH = 9 * BATCH
READS = 100
BATCH_MS = 30_000
WINDOW_MS = 60_000
WINDOW_BATCHES = WINDOW_MS // BATCH_MS
CONTROL_RATE = 0.01

FLAG = Flag(
    key="PROMPT_IMPROVER_ENABLED",
    state=State.ROLLING,
    percent_bp=1000,
    stages=(
        Stage(percent_bp=1000, bake_ms=0, min_samples=1000),
        Stage(percent_bp=5000, bake_ms=0, min_samples=5000),
        Stage(percent_bp=10_000, bake_ms=0, min_samples=5000),
    ),
    stage=0,
    stage_started_at=0,
    auto_advance=False,
    gates=(Gate("error_rate", warn=0.05, critical=0.10, min_samples=100, window_ms=WINDOW_MS),),
)


class Binomial:
    """Exact Binomial(n, p) draws by inverting a precomputed CDF: one uniform per draw."""

    def __init__(self, n: int, p: float) -> None:
        cdf, acc = [], 0.0
        for k in range(n + 1):
            acc += math.comb(n, k) * p**k * (1.0 - p) ** (n - k)
            cdf.append(acc)
        cdf[-1] = 1.0  # float sums may fall a hair short; the last bin must catch u in [0, 1)
        self._cdf = cdf

    def draw(self, rng: Random) -> int:
        return bisect_left(self._cdf, rng.random())


@dataclass(frozen=True)
class Run:
    killed_at: int | None  # treatment samples when killed
    offered_advance: bool


def run_stage(rng: Random, treatment: Binomial, control: Binomial) -> Run:
    t_errors = c_errors = 0
    window: deque[tuple[int, int]] = deque(maxlen=WINDOW_BATCHES)
    offered = False
    for read in range(1, READS + 1):
        te, ce = treatment.draw(rng), control.draw(rng)
        t_errors += te
        c_errors += ce
        window.append((te, ce))
        n = read * BATCH
        evidence = Evidence(
            stage=Arms(
                ArmStats(samples=n, errors=t_errors),
                ArmStats(samples=read * CONTROL_BATCH, errors=c_errors),
            ),
            windows={
                WINDOW_MS: Arms(
                    ArmStats(samples=len(window) * BATCH, errors=sum(w[0] for w in window)),
                    ArmStats(samples=len(window) * CONTROL_BATCH, errors=sum(w[1] for w in window)),
                )
            },
        )
        decision = decide(FLAG, read_gates(FLAG, evidence), now_ms=read * BATCH_MS, stage_samples=n)
        if decision.action is Action.KILL:
            return Run(killed_at=n, offered_advance=offered)
        offered |= decision.action in (Action.ADVANCE, Action.AWAIT_APPROVAL, Action.COMPLETE)
    return Run(killed_at=None, offered_advance=offered)


def simulate(rate: float, runs: int, seed: int) -> list[Run]:
    rng = Random(seed)
    treatment, control = Binomial(BATCH, rate), Binomial(CONTROL_BATCH, CONTROL_RATE)
    return [run_stage(rng, treatment, control) for _ in range(runs)]


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    started = time.perf_counter()

    bad = simulate(0.20, args.runs, args.seed)
    to_kill = [float(r.killed_at) if r.killed_at is not None else math.inf for r in bad]
    median, p99 = nearest_rank(to_kill, 0.5), nearest_rank(to_kill, 0.99)
    healthy = simulate(0.05, args.runs, args.seed + 1)
    false_kills = sum(r.killed_at is not None for r in healthy) / args.runs
    middling = simulate(0.08, args.runs, args.seed + 2)
    held = sum(r.killed_at is None and not r.offered_advance for r in middling) / args.runs
    killed_8 = sum(r.killed_at is not None for r in middling) / args.runs
    offered_8 = sum(r.offered_advance for r in middling) / args.runs

    rows = [
        ("samples to kill at 20%, median", f"{median:g}", "≤ 150", median <= 150),
        ("samples to kill at 20%, p99", f"{p99:g}", "≤ 300", p99 <= 300),
        ("false kills at 5%", f"{false_kills:.1%}", "< 1%", false_kills < 0.01),
        ("held at 8% (not killed, no advance)", f"{held:.1%}", "≥ 99%", held >= 0.99),
    ]
    print(f"bench/decisions.py: {args.runs} runs per scenario, seed {args.seed}")
    print(f"{'figure':<38} {'value':>8}  {'target':<7} result")
    for name, value, target, ok in rows:
        print(f"{name:<38} {value:>8}  {target:<7} {'PASS' if ok else 'MISS'}")
    print(
        f"(8% runs: {killed_8:.1%} killed, {offered_8:.1%} offered an advance; "
        f"{time.perf_counter() - started:.1f}s)"
    )
    return 0 if all(ok for *_, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
