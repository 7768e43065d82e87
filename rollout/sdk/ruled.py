"""Answer functions of a flag with targeting rules: deny, allow, the rules, then the bucket.

``is_enabled`` of such a flag is generated as one function per flag value (when the flag
changes, never per call): the rule chain of ``core.rules_compiled`` written inline between the
allow list and the inlined bucketing formula, so three rules that miss cost their own tests
and no extra Python call. As there, the text comes from fixed templates; every value reaches
it through the namespace. ``assign`` (for ``track``/``record``) is the same order as plain
closures. ``tests/sdk/test_rules.py`` checks both against ``core.evaluation.evaluate``.

A rule answer joins no arm, so it is neither an exposure nor a sample. Odd input of any kind
(an id that is no string, attributes that are no mapping or whose ``get`` raises) goes to
``careful``, which asks ``core.evaluation`` and answers the default if even that fails.
"""

from __future__ import annotations

import mmh3

from rollout.core.bucketing import BUCKETS
from rollout.core.model import Flag
from rollout.core.rules import Report
from rollout.core.rules_compiled import compile_rules, rule_chain, run_source
from rollout.sdk.compiled import CONTROL, OFF, ON, TREATMENT, Compiled, _hash, careful_code_for


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
