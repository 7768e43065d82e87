"""Gate readings of a flag: evidence from the metrics store, judged by the pure gate math."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from rollout.core import histogram
from rollout.core.bounds import Moments
from rollout.core.evidence import ArmStats, Evidence
from rollout.core.gate_schema import gate_to_dict
from rollout.core.gates import GateSummary, Reading, Verdict, read_gates
from rollout.core.model import Flag
from rollout.core.schema import flag_to_dict
from rollout.core.srm import SrmReading, check_split
from rollout.core.transitions import serving
from rollout.core.units import render_instant, to_ms
from rollout.storage.metrics import MetricsStore

Clock = Callable[[], float]


def _finite(value: float | None) -> float | None:
    # A percentile in the overflow bucket is +inf, which JSON cannot carry: report it as unknown.
    return value if value is not None and math.isfinite(value) else None


def arm_to_dict(stats: ArmStats) -> dict[str, Any]:
    p = {q: _finite(histogram.percentile(stats.latency, q)) for q in (0.5, 0.95, 0.99)}
    return {
        "samples": stats.samples,
        "errors": stats.errors,
        "error_rate": stats.errors / stats.samples if stats.samples else None,
        "errors_by_type": dict(stats.errors_by_type),
        "exposures": stats.exposures,
        "p50_ms": p[0.5],
        "p95_ms": p[0.95],
        "p99_ms": p[0.99],
        "values": {
            name: {"n": m.n, "mean": m.mean, "sd": math.sqrt(m.variance) if m.n > 1 else None}
            for name, m in sorted(stats.values.items())
        },
    }


def reading_to_dict(reading: Reading) -> dict[str, Any]:
    return {
        "verdict": str(reading.verdict),
        "value": _finite(reading.value),
        "bound": _finite(reading.bound),
        "samples": reading.samples,
        "control_value": _finite(reading.control_value),
        "control_samples": reading.control_samples,
        "why": reading.why,
    }


def gate_summary_to_dict(summary: GateSummary) -> dict[str, Any]:
    return {
        **gate_to_dict(summary.gate),
        "verdict": str(summary.verdict),
        "why": summary.why,
        "readings": {
            "window": reading_to_dict(summary.window),
            "stage": reading_to_dict(summary.stage),
        },
    }


class GateService:
    def __init__(self, metrics: MetricsStore, clock: Clock) -> None:
        self.metrics = metrics
        self.clock = clock

    def evidence(self, flag: Flag, *, now: float | None = None) -> Evidence:
        """The flag's evidence, its sliding windows ending at ``now`` (default: the clock's)."""
        return self.metrics.evidence(
            flag.key,
            flag.stage_started_at or 0,
            now=self.clock() if now is None else now,
            windows_ms=[gate.window_ms for gate in flag.gates],
        )

    def srm(self, flag: Flag, evidence: Evidence | None = None) -> SrmReading:
        """The stage's arms against the split the percent implies (``core.srm``)."""
        return check_split(flag, (evidence if evidence is not None else self.evidence(flag)).stage)

    def readings(self, flag: Flag, evidence: Evidence | None = None) -> list[GateSummary]:
        return read_gates(flag, evidence if evidence is not None else self.evidence(flag))

    def failing(self, flag: Flag) -> Sequence[str]:
        """Gates at fail; a flag that serves no one through the bucket has none to read."""
        if not serving(flag) or not flag.gates:
            return ()
        return [str(s.gate.metric) for s in self.readings(flag) if s.verdict is Verdict.FAIL]

    def control_p95(self, flag: Flag) -> float | None:
        """The control arm's p95 over the current stage: the latency baseline for 100%.

        None when unknown, or beyond the histogram's range (then no ratio can be judged).
        """
        return self.control_baseline(flag)[0]

    def control_baseline(self, flag: Flag) -> tuple[float | None, dict[str, Moments]]:
        """What stands in for control at 100%, read once over the current stage: control's
        p95 (None when unknown or beyond the histogram's range) and its count, mean and M2 of
        each business value (only values with at least two observations)."""
        control = self.evidence(flag).stage.control
        p95 = _finite(histogram.percentile(control.latency, 0.95))
        values = {name: m for name, m in control.values.items() if m.n >= 2}
        return p95, values

    def report(self, flag: Flag) -> dict[str, Any]:
        """Readings per gate and per arm, with verdicts, counts and the controller's word."""
        evidence = self.evidence(flag)
        summaries = self.readings(flag, evidence)
        status = flag.status
        return {
            "key": flag.key,
            "state": str(flag.state),
            "stage": flag.stage,
            "evidence_since": render_instant(flag.stage_started_at),
            "read_at": render_instant(to_ms(self.clock())),
            "arms": {
                "treatment": arm_to_dict(evidence.stage.treatment),
                "control": arm_to_dict(evidence.stage.control),
            },
            "memory_mb": evidence.memory_mb,
            "baseline_p95_ms": flag.baseline_p95_ms,
            "baseline_values": flag_to_dict(flag)["baseline_values"],
            "gates": [gate_summary_to_dict(s) for s in summaries],
            "srm": self.srm(flag, evidence).to_dict(),
            "status": None
            if status is None
            else {"decision": status.decision, "why": status.why, "at": render_instant(status.at)},
        }
