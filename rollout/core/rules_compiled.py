"""A flag's rules as one generated function: no Python call per rule on the common path.

``compile_rules`` writes the rule chain out as straight-line code, once per flag value (the SDK
compiles when a flag changes), because a call per rule would triple the cost of a flag with
three rules. The generated text is built from fixed templates and rule indices only: every
attribute name, value and matcher reaches it through the function's namespace, never as text,
so no input can change the code.

Each rule gets a fast branch for the common case (a string, or a number for the comparisons)
and otherwise defers to the rule's own matcher (``rules.matcher``), which defines the semantics
for every value (str subclasses, booleans, numbers, non-scalars and ``report``); see
``_rule_block``. Semver answers are memoised per rule and attribute string: callers send few
distinct versions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from rollout.core.rules import (
    NUMBER_OPS,
    SEMVER_OPS,
    Op,
    Report,
    Rule,
    Test,
    matcher,
)

Match = Callable[[Mapping[str, object]], bool | None]
SEMVER_MEMO = 1024  # distinct version strings remembered per rule; a full memo starts over

_COMPARE = {Op.LT: "<", Op.LTE: "<=", Op.GT: ">", Op.GTE: ">="}


def _semver_answer(rule: Rule, test: Test) -> tuple[dict[str, bool], Callable[[object], bool]]:
    memo: dict[str, bool] = {}

    def answer(value: object) -> bool:
        result = test(value)
        if type(value) is str:  # only exact strings: a subclass may redefine == and hash
            if len(memo) >= SEMVER_MEMO:
                memo.clear()
            memo[value] = result
        return result

    return memo, answer


_STRING_METHODS = {
    Op.STARTS_WITH: str.startswith,
    Op.ENDS_WITH: str.endswith,
    Op.CONTAINS: str.__contains__,
}


def _rule_block(i: int, rule: Rule, names: dict[str, object]) -> list[str]:
    """The statements deciding rule ``i`` (at indent 0); ``T{i}`` is its exact matcher.

    Three shapes, each taking its fast branch only where the answer is the matcher's:
    string operators call ``str``'s own method, which refuses (TypeError) anything that is not
    a string, and then the matcher decides; semver looks the string up in its memo first;
    ``in``/``not_in`` and comparisons test the exact type (``type()``, never ``__class__``,
    which an object may fake), since ``True in {1}`` and ``True < 2`` hold in Python.
    """
    op = rule.op
    head = [f"v = attributes.get(N{i})"]  # no bound method: one allocation fewer a call
    if op in _STRING_METHODS and (op is not Op.CONTAINS or len(rule.values) == 1):
        names[f"OP{i}"] = _STRING_METHODS[op]
        names[f"C{i}"] = (
            str(rule.values[0]) if op is Op.CONTAINS else tuple(str(x) for x in rule.values)
        )
        return [
            *head,
            "if v is not None:",
            "    try:",
            f"        hit = OP{i}(v, C{i})",
            "    except TypeError:",
            f"        hit = T{i}(v)",
            "    if hit:",
            f"        return S{i}",
        ]
    if op in SEMVER_OPS:
        memo, answer = _semver_answer(rule, names[f"T{i}"])  # type: ignore[arg-type]
        names[f"M{i}"], names[f"A{i}"] = memo, answer
        return [
            *head,
            "if v is not None:",
            "    try:",
            f"        r = M{i}[v]",
            "    except (KeyError, TypeError):",
            f"        r = A{i}(v)",
            "    if r:",
            f"        return S{i}",
        ]
    if op in NUMBER_OPS:
        names[f"X{i}"] = rule.values[0]
        fast = ["if type(v) is int or type(v) is float:", f"    if v {_COMPARE[op]} X{i}:"]
    elif op is Op.IN or op is Op.NOT_IN:
        names[f"C{i}"] = frozenset(x for x in rule.values if isinstance(x, str))
        fast = ["if type(v) is str:", f"    if v {'in' if op is Op.IN else 'not in'} C{i}:"]
    else:  # contains, several values
        fast = ["if type(v) is str:", f"    if T{i}(v):"]
    return [
        *head,
        *fast,
        f"        return S{i}",
        "elif v is not None:",
        f"    if T{i}(v):",
        f"        return S{i}",
    ]


BUILTINS = {
    "type": type,
    "str": str,
    "int": int,
    "float": float,
    "KeyError": KeyError,
    "TypeError": TypeError,
}
"""All the generated code may call besides its namespace."""


def rule_chain(rules: Sequence[Rule], report: Report | None, names: dict[str, object]) -> list[str]:
    """The statements deciding ``rules`` in order, at indent 0, filling ``names``.

    They read ``attributes`` (a mapping; ``get`` is all they call) and ``return`` the first matching
    rule's ``serve``; when none matches they fall through. ``sdk.compiled`` embeds them in its
    answer function; ``compile_rules`` wraps them in one of their own.
    """
    lines: list[str] = []
    for i, rule in enumerate(rules):
        if not isinstance(rule, Rule):  # the validated model only: the templates rely on it
            raise TypeError("rule_chain takes Rule values")
        names[f"N{i}"] = rule.attribute
        names[f"S{i}"] = rule.serve
        names[f"T{i}"] = rule.test if report is None else matcher(rule, report)
        lines += _rule_block(i, rule, names)
    return lines


def run_source(lines: list[str], names: dict[str, object], name: str, title: str) -> object:
    """Compile generated ``lines`` with only ``names`` and ``BUILTINS`` in scope; ``name``."""
    namespace: dict[str, object] = {"__builtins__": dict(BUILTINS), **names}
    exec(compile("\n".join(lines), title, "exec"), namespace)
    return namespace[name]


def compile_rules(rules: Sequence[Rule], report: Report | None = None) -> Match:
    """One function answering the first matching rule's ``serve``, or ``None``.

    It agrees with ``rules.match`` for every input (``tests/core/test_rules.py``). It raises
    only what a hostile mapping raises from ``get``; callers that must never raise (the SDK)
    catch that. ``report`` hears (attribute, value) of values that are not scalars.
    """
    names: dict[str, object] = {}
    chain = rule_chain(rules, report, names)
    body = ["def first(attributes):"]
    body += ["    " + line for line in chain]
    body.append("    return None")
    return run_source(body, names, "first", f"<rules of {len(rules)}>")  # type: ignore[return-value]
