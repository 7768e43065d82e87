"""The flag and its parts (DESIGN §2) as immutable values.

Every change produces a new ``Flag``; storage assigns ``version``. Units: percentages in basis
points, durations in milliseconds, instants in epoch milliseconds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from rollout.core.bounds import Moments
from rollout.core.defaults import GATE_MIN_SAMPLES, GATE_WINDOW_MS
from rollout.core.rules import Rule

KEY_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$")
VALUE_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # a business value (``value:NAME``)


class State(StrEnum):
    DRAFT = "draft"
    ROLLING = "rolling"
    PAUSED = "paused"
    COMPLETE = "complete"
    KILLED = "killed"


@dataclass(frozen=True, slots=True)
class Stage:
    percent_bp: int
    bake_ms: int = 0
    min_samples: int = 0


HIGHER_IS_BETTER = "higher_is_better"
LOWER_IS_BETTER = "lower_is_better"
DIRECTIONS = (HIGHER_IS_BETTER, LOWER_IS_BETTER)  # of a business value (``value:NAME``)
# What a sample ratio mismatch does (``core.srm``): hold (default), kill, or only report.
SRM_HOLD, SRM_KILL, SRM_WARN = "hold", "kill", "warn"
SRM_MODES = (SRM_HOLD, SRM_KILL, SRM_WARN)


@dataclass(frozen=True, slots=True)
class Gate:
    metric: str  # the name of a kind in core.gates.GATE_KINDS
    warn: float
    critical: float
    min_samples: int = GATE_MIN_SAMPLES
    window_ms: int = GATE_WINDOW_MS
    # ``value:NAME`` gates only: which way is better, and whether the change is relative.
    direction: str = HIGHER_IS_BETTER
    relative: bool = True


@dataclass(frozen=True, slots=True)
class KillRecord:
    reason: str
    by: str
    at: int
    state_before: State
    stage_before: int | None
    percent_before_bp: int


@dataclass(frozen=True, slots=True)
class Status:
    """The controller's latest word: a decision (``hold``, ``advance``...) and why."""

    decision: str
    why: str
    at: int


@dataclass(frozen=True, slots=True)
class Flag:
    key: str
    description: str = ""
    state: State = State.DRAFT
    percent_bp: int = 0
    stages: tuple[Stage, ...] = ()
    auto_advance: bool = False
    stage: int | None = None
    stage_started_at: int | None = None
    gates: tuple[Gate, ...] = ()
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()  # targeting rules on context attributes, first match wins
    salt: str = ""
    kill: KillRecord | None = None
    status: Status | None = None
    version: int = 0
    created_at: int | None = None
    updated_at: int | None = None
    completed_at: int | None = None
    # The control arm's p95 latency measured just before the last stage, so latency_ratio can
    # still be judged at 100% when no control traffic is left.
    baseline_p95_ms: float | None = None
    # What a sample ratio mismatch does (core.srm): "hold" (never advance), "kill" or "warn".
    srm: str = SRM_HOLD
    # Control's count, mean and M2 of each business value (``value:NAME`` gates) at the same
    # moment: the mean stands in for control at 100%, its spread says how well it is known.
    baseline_values: Mapping[str, Moments] = field(default_factory=dict)

    def with_changes(self, **changes: object) -> Flag:
        return replace(self, **changes)  # type: ignore[arg-type]

    def same_content(self, other: Flag) -> bool:
        """Equal apart from bookkeeping (version, updated_at): a move that changes nothing."""
        return replace(self, version=0, updated_at=None) == replace(
            other, version=0, updated_at=None
        )


def new_flag(key: str, now: int, **config: object) -> Flag:
    """A fresh draft at 0%, salted with its key unless a salt is given."""
    salt = config.pop("salt", None) or key
    return Flag(key=key, salt=str(salt), created_at=now, updated_at=now).with_changes(**config)
