"""Per-flag answer functions, compiled once per change so ``is_enabled`` does the minimum.

The answer function is ``core.evaluation.evaluate`` specialised for one flag value: killed and
overridden flags become constants, empty allow/deny lists cost nothing, and the bucketing
formula (DESIGN §3) is inlined with the salt prefix prebuilt. ``tests/sdk`` checks that it
agrees with ``evaluate`` for every rule.

Answers that came from the bucket are counted as exposures of their arm (``counts[0]``
control, ``counts[1]`` treatment). The counters only ever grow; the flusher sends deltas, so no
reader ever resets them under a writer's feet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import mmh3

from rollout.core.bucketing import BUCKETS
from rollout.core.evaluation import ARM_OF_REASON, evaluate
from rollout.core.model import Flag, State

Check = Callable[[object], bool]
Assign = Callable[[object], int]

# assign() codes: bit 0 is the answer, bit 1 says the answer came from the bucket (an arm).
OFF, ON, CONTROL, TREATMENT = 0, 1, 2, 3


@dataclass
class Compiled:
    check: Check
    assign: Assign
    key: str
    epoch: int  # the stage's start: metrics of a new stage or a revive start from zero
    counts: list[int] = field(default_factory=lambda: [0, 0])


def _constant(key: str, value: bool) -> Compiled:
    code = ON if value else OFF
    return Compiled(check=lambda user: value, assign=lambda user: code, key=key, epoch=0)


def compile_flag(flag: Flag | None, override: bool | None, default: bool, key: str) -> Compiled:
    """The answer functions for one flag value, override and caller default."""
    if flag is not None and flag.state is State.KILLED:
        return _constant(key, False)  # the kill switch wins over everything, overrides included
    if override is not None:
        return _constant(key, override)
    if flag is None:
        return _constant(key, default)
    known: Flag = flag
    prefix = f"{flag.salt}:"
    percent_bp = flag.percent_bp
    allow = frozenset(flag.allow)
    deny = frozenset(flag.deny)
    hash32 = mmh3.hash
    counts = [0, 0]

    def careful_code(user: object) -> int:
        # Off the fast path: non-string ids (ints, UUIDs) bucket by their text, and anything
        # that cannot even be printed gets the caller's default rather than an exception.
        try:
            result = evaluate(known, str(user))
        except Exception:
            return ON if default else OFF
        arm = ARM_OF_REASON.get(result.reason)
        if arm is None:
            return ON if result.enabled else OFF
        return TREATMENT if arm == "treatment" else CONTROL

    def careful(user: object) -> bool:
        code = careful_code(user)
        if code >= CONTROL:
            counts[code - CONTROL] += 1
        return code & 1 == 1

    if not allow and not deny:

        def cohort(user: object) -> bool:
            try:
                on = hash32(prefix + user, 0, False) % BUCKETS < percent_bp  # type: ignore[operator]
            except TypeError:
                return careful(user)
            counts[on] += 1
            return on

        def cohort_code(user: object) -> int:
            try:
                if hash32(prefix + user, 0, False) % BUCKETS < percent_bp:  # type: ignore[operator]
                    return TREATMENT
                return CONTROL
            except TypeError:
                return careful_code(user)

        return Compiled(cohort, cohort_code, key, flag.stage_started_at or 0, counts)

    def listed(user: object) -> bool:
        try:
            if user in deny:
                return False
            if user in allow:
                return True
            on = hash32(prefix + user, 0, False) % BUCKETS < percent_bp  # type: ignore[operator]
        except TypeError:
            return careful(user)
        counts[on] += 1
        return on

    def listed_code(user: object) -> int:
        try:
            if user in deny:
                return OFF
            if user in allow:
                return ON
            if hash32(prefix + user, 0, False) % BUCKETS < percent_bp:  # type: ignore[operator]
                return TREATMENT
            return CONTROL
        except TypeError:
            return careful_code(user)

    return Compiled(listed, listed_code, key, flag.stage_started_at or 0, counts)
