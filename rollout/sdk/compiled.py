"""Per-flag answer functions, compiled once per change so ``is_enabled`` does the minimum.

The answer function is ``core.evaluation.evaluate`` specialised for one flag value: killed and
overridden flags become constants, empty allow/deny lists cost nothing, and the bucketing
formula (DESIGN §3) is inlined with the salt prefix prebuilt. ``tests/sdk`` checks that it
agrees with ``evaluate`` for every rule.
"""

from __future__ import annotations

from collections.abc import Callable

import mmh3

from rollout.core.bucketing import BUCKETS
from rollout.core.evaluation import evaluate
from rollout.core.model import Flag, State

Check = Callable[[object], bool]


def constant(value: bool) -> Check:
    def check(user: object) -> bool:
        return value

    return check


def compile_flag(flag: Flag | None, override: bool | None, default: bool) -> Check:
    """The answer function for one flag value, override and caller default."""
    if flag is not None and flag.state is State.KILLED:
        return constant(False)  # the kill switch wins over everything, an override included
    if override is not None:
        return constant(override)
    if flag is None:
        return constant(default)
    known: Flag = flag
    prefix = f"{flag.salt}:"
    percent_bp = flag.percent_bp
    allow = frozenset(flag.allow)
    deny = frozenset(flag.deny)
    hash32 = mmh3.hash

    def careful(user: object) -> bool:
        # Off the fast path: non-string ids (ints, UUIDs) bucket by their text, and anything
        # that cannot even be printed gets the caller's default rather than an exception.
        try:
            return evaluate(known, str(user)).enabled
        except Exception:
            return default

    if not allow and not deny:
        if percent_bp <= 0:
            return constant(False)
        if percent_bp >= BUCKETS:
            return constant(True)

        def cohort(user: object) -> bool:
            try:
                return hash32(prefix + user, 0, False) % BUCKETS < percent_bp  # type: ignore[operator]
            except TypeError:
                return careful(user)

        return cohort

    def listed(user: object) -> bool:
        try:
            if user in deny:
                return False
            if user in allow:
                return True
            return hash32(prefix + user, 0, False) % BUCKETS < percent_bp  # type: ignore[operator]
        except TypeError:
            return careful(user)

    return listed
