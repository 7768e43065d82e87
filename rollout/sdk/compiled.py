"""Per-flag answer functions, compiled once per change so ``is_enabled`` does the minimum.

The answer function is ``core.evaluation.evaluate`` specialised for one flag value: killed and
overridden flags become constants, empty allow/deny lists cost nothing, and the bucketing
formula (DESIGN §3) is inlined with the salt prefix prebuilt. ``tests/sdk`` checks that it
agrees with ``evaluate`` for every rule.

Every answer function takes ``(user, attributes=None)``. A flag without targeting rules never
looks at the attributes (its functions are the ones it had before rules existed); a flag with
rules gets functions of its own (``compile_ruled``, below), with the rules compiled once per
flag value.

Answers that came from the bucket are counted as exposures of their arm (read with
``exposures()``: control, treatment), and outcomes recorded by ``track``/``record`` are folded
into that arm's ``ArmCounter`` on the spot. Counters only ever grow and the flusher sends deltas, so
no reader resets them under a writer's feet and an unsent delta survives a Redis outage.
Increments take no lock: two threads may, rarely, lose one count between them, which moves a
rate by far less than its confidence interval and keeps the caller's path lock-free.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import mmh3

from rollout.core.bucketing import BUCKETS
from rollout.core.evaluation import ARM_OF_REASON, evaluate
from rollout.core.histogram import BUCKETS as BUCKET_COUNT
from rollout.core.histogram import UPPER_BOUNDS
from rollout.core.model import Flag, State
from rollout.core.rules import Report
from rollout.core.rules_compiled import compile_rules, rule_chain, run_source

Check = Callable[..., bool]  # (user, attributes=None)
Assign = Callable[..., int]  # (user, attributes=None)

# assign() codes: bit 0 is the answer, bit 1 says the answer came from the bucket (an arm).
OFF, ON, CONTROL, TREATMENT = 0, 1, 2, 3


class ArmCounter:
    """Outcomes of one arm under one flag value. Counters only grow; the flusher sends deltas."""

    __slots__ = ("by_type", "errors", "latency", "samples", "values")

    def __init__(self) -> None:
        self.samples = 0
        self.errors = 0
        self.by_type: dict[str, int] = {}
        self.latency = [0] * BUCKET_COUNT  # histogram by core.histogram bucket
        # Business values since the last flush: name -> [count, mean, M2] (Welford). Unlike the
        # counters, the flusher takes this dict away whole and leaves a fresh one.
        self.values: dict[str, list[float]] = {}

    def add(self, duration_ms: float | None, error_type: str | None) -> None:
        if duration_ms is not None and duration_ms == duration_ms:
            self.latency[bisect_left(UPPER_BOUNDS, duration_ms)] += 1
        self.samples += 1
        if error_type is not None:
            self.errors += 1
            self.by_type[error_type] = self.by_type.get(error_type, 0) + 1


@dataclass
class Compiled:
    check: Check
    assign: Assign  # the answer as a code (OFF, ON, CONTROL, TREATMENT); counts nothing
    key: str
    epoch: int  # the stage's start: metrics of a new stage or a revive start from zero
    exposures: Callable[[], tuple[int, int]] = field(default=lambda: (0, 0))  # control, treatment
    arms: tuple[ArmCounter, ArmCounter] = field(
        default_factory=lambda: (ArmCounter(), ArmCounter())
    )


def _hash(prefix: str, user: object) -> int:
    """The bucket of a string id; raises (never crashes) for anything that is not one.

    ASCII ids (nearly all) hash as ``str``, the fastest path; anything else goes through
    ``encode()``, which refuses a lone surrogate where mmh3 given such a ``str`` would crash.
    """
    if user.isascii():  # type: ignore[attr-defined]
        return mmh3.hash(prefix + user, 0, False) % BUCKETS  # type: ignore[operator]
    return mmh3.hash((prefix + user).encode(), 0, False) % BUCKETS  # type: ignore[operator]


def careful_code_for(flag: Flag, default: bool) -> Assign:
    """The answer code off the fast path, from ``core.evaluation`` itself.

    Non-string ids (ints, UUIDs) bucket by their text, attributes that are no mapping count as
    none, and anything that cannot even be printed (or whose mapping raises) gets the caller's
    default rather than an exception.
    """

    def careful_code(user: object, attributes: object = None) -> int:
        try:
            context = attributes if isinstance(attributes, Mapping) else None
            result = evaluate(flag, str(user), attributes=context)
        except Exception:
            return ON if default else OFF
        arm = ARM_OF_REASON.get(result.reason)
        if arm is None:
            return ON if result.enabled else OFF
        return TREATMENT if arm == "treatment" else CONTROL

    return careful_code


def _constant(key: str, value: bool) -> Compiled:
    code = ON if value else OFF
    return Compiled(
        check=lambda user, attributes=None: value,
        assign=lambda user, attributes=None: code,
        key=key,
        epoch=0,
    )


def compile_flag(
    flag: Flag | None,
    override: bool | None,
    default: bool,
    key: str,
    report: Report | None = None,
) -> Compiled:
    """The answer functions for one flag value, override and caller default.

    ``report(attribute, value)`` hears of context values that no rule can use (not a string,
    number or boolean); only flags with rules look at the context at all.
    """
    if flag is not None and flag.state is State.KILLED:
        return _constant(key, False)  # the kill switch wins over everything, overrides included
    if override is not None:
        return _constant(key, override)
    if flag is None:
        return _constant(key, default)
    if flag.rules:
        return compile_ruled(flag, default, key, report)
    known: Flag = flag
    prefix = f"{flag.salt}:"
    percent_bp = flag.percent_bp
    allow = frozenset(flag.allow)
    deny = frozenset(flag.deny)
    hash32 = mmh3.hash
    # Exposure counters as closure variables: the cheapest increment Python has, and no
    # bool is built only to index a list (measured: it keeps is_enabled at the floor's cost).
    control = treatment = 0

    def exposures() -> tuple[int, int]:
        return control, treatment

    careful_code = careful_code_for(known, default)

    def careful(user: object, attributes: object = None) -> bool:
        nonlocal control, treatment
        code = careful_code(user)
        if code == TREATMENT:
            treatment += 1
        elif code == CONTROL:
            control += 1
        return code & 1 == 1

    if not allow and not deny:

        def cohort(user: object, attributes: object = None) -> bool:
            nonlocal control, treatment
            try:
                if user.isascii():  # type: ignore[attr-defined]  # see _hash
                    b = hash32(prefix + user, 0, False) % BUCKETS  # type: ignore[operator]
                else:
                    b = hash32((prefix + user).encode(), 0, False) % BUCKETS  # type: ignore[operator]
            except Exception:  # odd ids (non-str, hostile __hash__): the careful path decides
                return careful(user)
            if b < percent_bp:
                treatment += 1
                return True
            control += 1
            return False

        def cohort_code(user: object, attributes: object = None) -> int:
            try:
                if user.isascii():  # type: ignore[attr-defined]  # see _hash; inlined for track()
                    b = hash32(prefix + user, 0, False) % BUCKETS  # type: ignore[operator]
                else:
                    b = hash32((prefix + user).encode(), 0, False) % BUCKETS  # type: ignore[operator]
            except Exception:  # odd ids (non-str, hostile __hash__): the careful path decides
                return careful_code(user)
            return TREATMENT if b < percent_bp else CONTROL

        return Compiled(cohort, cohort_code, key, flag.stage_started_at or 0, exposures)

    def listed(user: object, attributes: object = None) -> bool:
        nonlocal control, treatment
        try:
            if user in deny:
                return False
            if user in allow:
                return True
            b = _hash(prefix, user)
        except Exception:  # odd ids (non-str, hostile __hash__): the careful path decides
            return careful(user)
        if b < percent_bp:
            treatment += 1
            return True
        control += 1
        return False

    def listed_code(user: object, attributes: object = None) -> int:
        try:
            if user in deny:
                return OFF
            if user in allow:
                return ON
            return TREATMENT if _hash(prefix, user) < percent_bp else CONTROL
        except Exception:  # odd ids (non-str, hostile __hash__): the careful path decides
            return careful_code(user)

    return Compiled(listed, listed_code, key, flag.stage_started_at or 0, exposures)


# -- flags with targeting rules ------------------------------------------------------------
#
# Answer functions of a flag with targeting rules: deny, allow, the rules, then the bucket.
#
# ``is_enabled`` of such a flag is generated as one function per flag value (when the flag
# changes, never per call): the rule chain of ``core.rules_compiled`` written inline between the
# allow list and the inlined bucketing formula, so three rules that miss cost their own tests
# and no extra Python call. As there, the text comes from fixed templates; every value reaches
# it through the namespace. ``assign`` (for ``track``/``record``) is the same order as plain
# closures. ``tests/sdk/test_rules.py`` checks both against ``core.evaluation.evaluate``.
#
# A rule answer joins no arm, so it is neither an exposure nor a sample. Odd input of any kind
# (an id that is no string, attributes that are no mapping or whose ``get`` raises) goes to
# ``careful``, which asks ``core.evaluation`` and answers the default if even that fails.


def _check_source(chain: list[str], *, deny: bool, allow: bool) -> list[str]:
    lines = [
        "def make():",
        "    control = 0",
        "    treatment = 0",
        "    def exposures():",
        "        return control, treatment",
        "    def check(user, attributes=None):",
        "        nonlocal control, treatment",
        "        try:",
    ]
    if deny:
        lines += ["            if user in DENY:", "                return False"]
    if allow:
        lines += ["            if user in ALLOW:", "                return True"]
    lines += ["            if attributes:"]
    lines += ["                " + line for line in chain]
    lines += [
        "            if user.isascii():",  # as sdk.compiled._hash, inlined
        "                b = HASH(PREFIX + user, 0, False) % BUCKETS",
        "            else:",
        "                b = HASH((PREFIX + user).encode(), 0, False) % BUCKETS",
        "        except Exception:",
        "            code = CAREFUL(user, attributes)",
        "            if code == TREATMENT:",
        "                treatment += 1",
        "            elif code == CONTROL:",
        "                control += 1",
        "            return code & 1 == 1",
        "        if b < PERCENT:",
        "            treatment += 1",
        "            return True",
        "        control += 1",
        "        return False",
        "    return check, exposures",
    ]
    return lines


def compile_ruled(flag: Flag, default: bool, key: str, report: Report | None) -> Compiled:
    prefix = f"{flag.salt}:"
    percent_bp = flag.percent_bp
    allow = frozenset(flag.allow)
    deny = frozenset(flag.deny)
    careful_code = careful_code_for(flag, default)
    first = compile_rules(flag.rules, report)

    names: dict[str, object] = {
        "DENY": deny,
        "ALLOW": allow,
        "HASH": mmh3.hash,
        "PREFIX": prefix,
        "BUCKETS": BUCKETS,
        "PERCENT": percent_bp,
        "CAREFUL": careful_code,
        "CONTROL": CONTROL,
        "TREATMENT": TREATMENT,
        "Exception": Exception,
    }
    chain = rule_chain(flag.rules, report, names)
    source = _check_source(chain, deny=bool(deny), allow=bool(allow))
    make = run_source(source, names, "make", f"<flag {key!r} with {len(flag.rules)} rules>")
    check, exposures = make()  # type: ignore[operator]

    def code_of(user: object, attributes: object = None) -> int:
        try:
            if user in deny:
                return OFF
            if user in allow:
                return ON
            if attributes:
                served = first(attributes)  # type: ignore[arg-type]
                if served is not None:
                    return ON if served else OFF
            return TREATMENT if _hash(prefix, user) < percent_bp else CONTROL
        except Exception:  # odd ids or contexts: the careful path decides
            return careful_code(user, attributes)

    return Compiled(check, code_of, key, flag.stage_started_at or 0, exposures)
