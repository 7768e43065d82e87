"""What a rollout report says (pure): total loads, per-arm trends, and each Go/No-Go with its
evidence, from the stage summaries (``services/summaries.py``) and the current stage's reading.

A summary is the JSON dict a stage's end stored; the current stage has the same shape with
``ended_at`` and ``ended_by`` null.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

ARMS = ("treatment", "control")

# How each ending reads in an incident review: the operator's or controller's verdict on it.
VERDICT = {
    "advance": "go",
    "complete": "go",
    "kill": "no-go",
    "rollback": "no-go",
    "set": "manual",
    "revive": "manual",
    "restore": "manual",
    "delete": "manual",
}


def totals(stages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Loads per arm and in all: exposures (``is_enabled`` answers) plus ``track`` samples,
    which are not counted as exposures; errors per arm."""
    per_arm: dict[str, dict[str, int]] = {}
    for arm in ARMS:
        exposures = sum(int(s["arms"][arm]["exposures"]) for s in stages)
        samples = sum(int(s["arms"][arm]["samples"]) for s in stages)
        errors = sum(int(s["arms"][arm]["errors"]) for s in stages)
        per_arm[arm] = {
            "exposures": exposures,
            "samples": samples,
            "errors": errors,
            "loads": exposures + samples,
        }
    return {"loads": sum(a["loads"] for a in per_arm.values()), "arms": per_arm}


def trends(stages: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per arm, stage by stage: percent, error rate (with its interval) and latency."""
    out: dict[str, list[dict[str, Any]]] = {arm: [] for arm in ARMS}
    for stage in stages:
        for arm in ARMS:
            figures = stage["arms"][arm]
            out[arm].append(
                {
                    "percent": stage["percent"],
                    "started_at": stage["started_at"],
                    "samples": figures["samples"],
                    "error_rate": figures["error_rate"],
                    "error_rate_interval": figures.get("error_rate_interval"),
                    "p50_ms": figures["p50_ms"],
                    "p95_ms": figures["p95_ms"],
                    "p99_ms": figures["p99_ms"],
                }
            )
    return out


def decisions(summaries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each stage's end as a Go/No-Go: who, when, why, and the gate readings it stood on."""
    out = []
    for summary in summaries:
        ended = summary.get("ended_by")
        if ended is None:
            continue
        out.append(
            {
                "verdict": VERDICT.get(ended, "manual"),
                "move": ended,
                "percent": summary["percent"],
                "at": summary["ended_at"],
                "by": summary["by"],
                "reason": summary.get("reason"),
                "status": summary.get("status"),
                "gates": [
                    {"metric": g["metric"], "verdict": g["verdict"], "why": g["why"]}
                    for g in summary.get("gates", [])
                ],
                "samples": {arm: summary["arms"][arm]["samples"] for arm in ARMS},
            }
        )
    return out
