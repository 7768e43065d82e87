"""Sample ratio mismatch (DESIGN §4.2): do the arms hold the shares the percent implies?

The bucket sends ``percent`` of assigned users to the treatment, so among the answers that came
from the bucket the treatment's share of exposures, and separately of samples, should be the
percent. A share that is off means the assignment or the instrumentation is broken (typically:
only the new path records outcomes), and then no gate verdict can be trusted.

The test is a sequential one, valid under continuous monitoring: for each count, the
beta-binomial mixture likelihood ratio of "the share is not ``expected``" against "it is"
(``sequential.share_evidence``, a two-arm sequential multinomial test), with its prior tightly
around the expected share because an instrumentation bug moves it by a point, not by ten
(``bounds.SRM_PRIOR_SIZE``). By Ville's inequality a correct split raises a mismatch at any look
of a stage with probability at most ``bounds.SRM_ALPHA`` (0.02%) per count, whatever the number
of looks: no fixed threshold corrected for looks is needed. It is chosen over a fixed
chi-square test, which read every second would raise false alarms on nearly every long stage.

``Flag.srm`` says what a mismatch does: ``hold`` (default: never advance while it stands, status
``sample_ratio_mismatch``), ``kill``, or ``warn`` (only reported).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rollout.core import bounds
from rollout.core.bucketing import BUCKETS
from rollout.core.evidence import Arms
from rollout.core.model import SRM_HOLD as HOLD
from rollout.core.model import SRM_KILL as KILL
from rollout.core.model import SRM_MODES, Flag
from rollout.core.readings import pct

__all__ = ["COUNTS", "HOLD", "KILL", "SRM_MODES", "SrmReading", "check_split"]
COUNTS = ("exposures", "samples")


@dataclass(frozen=True, slots=True)
class SrmReading:
    """Both counts against the expected split. ``verdict``: ``mismatch``, ``pass``, or
    ``insufficient`` (no bucketed traffic yet, or one arm only: 0% or 100%)."""

    verdict: str
    expected: float | None
    observed: dict[str, float | None]
    statistic: dict[str, float]
    why: str

    @property
    def mismatch(self) -> bool:
        return self.verdict == "mismatch"

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "expected": self.expected,
            "observed": dict(self.observed),
            "statistic": {k: round(v, 3) for k, v in self.statistic.items()},
        }


def check_split(flag: Flag, stage: Arms) -> SrmReading:
    """The stage's arms against the share ``flag.percent_bp`` implies."""
    expected = flag.percent_bp / BUCKETS
    counts = {
        "exposures": (stage.treatment.exposures, stage.control.exposures),
        "samples": (stage.treatment.samples, stage.control.samples),
    }
    if not 0.0 < expected < 1.0:
        return SrmReading(
            "insufficient",
            expected,
            dict.fromkeys(COUNTS),
            dict.fromkeys(COUNTS, 0.0),
            f"at {pct(expected)} there is one arm only: nothing to compare",
        )
    splits = {name: bounds.split(max(t, 0), max(c, 0), expected) for name, (t, c) in counts.items()}
    observed = {name: s.observed for name, s in splits.items()}
    statistic = {name: s.statistic for name, s in splits.items()}
    off = [name for name, s in splits.items() if s.mismatch]
    if off:
        parts = [
            f"treatment share of {name} {pct(observed[name] or 0.0)} "
            f"(of {sum(counts[name])}) vs expected {pct(expected)}, "
            f"evidence {statistic[name]:.1f} nats"
            for name in off
        ]
        why = (
            "sample_ratio_mismatch: "
            + "; ".join(parts)
            + (": assignment or instrumentation is broken, so the gates cannot be trusted")
        )
        return SrmReading("mismatch", expected, observed, statistic, why)
    if all(sum(c) == 0 for c in counts.values()):
        why = "no bucketed exposures or samples yet"
        return SrmReading("insufficient", expected, observed, statistic, why)
    shown = ", ".join(
        f"{name} {pct(observed[name] or 0.0)}" for name in COUNTS if observed[name] is not None
    )
    why = f"treatment shares {shown} agree with {pct(expected)}"
    return SrmReading("pass", expected, observed, statistic, why)
