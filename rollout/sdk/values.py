"""Business values in the SDK (DESIGN §4.1): ``observe`` folds named numbers into the user's arm.

Each arm keeps, per name, the count, mean and M2 of what it saw since the last flush (Welford's
update, numerically safe); the recorder takes those away at each flush and the store merges them
with Chan's formula. Bad input is dropped and counted, never raised and never sent: a name not
matching ``VALUE_NAME_PATTERN``, a name past the 20 a flag may have in this process, a non-number
(``True`` included), NaN, an infinity, or a number beyond ``VALUE_LIMIT`` (whose squares could
overflow on the server). Like the counters, an update takes no lock: a flush racing an update may,
rarely, lose that one observation.
"""

from __future__ import annotations

import numbers

from rollout.core.defaults import VALUE_LIMIT, VALUE_NAMES_PER_FLAG
from rollout.core.model import VALUE_NAME_PATTERN
from rollout.sdk.compiled import CONTROL, Compiled


class ValueSink:
    """Where ``observe`` checks names and counts what it drops (one per recorder)."""

    def __init__(self) -> None:
        self.dropped = 0
        self._names: dict[str, set[str]] = {}  # per flag key: at most VALUE_NAMES_PER_FLAG

    def observe(
        self, compiled: Compiled, user: object, name: str, value: float, attributes: object = None
    ) -> None:
        """One business value in the user's arm (Welford's update). Never raises.

        The common case (a name already seen this flush, a float within bounds) is inlined;
        anything else goes through ``_observe_first``, which checks and counts.
        """
        try:
            code = compiled.assign(user, attributes)
            if code < CONTROL:
                return
            moments = compiled.arms[code - CONTROL].values.get(name)
            if moments is None or value.__class__ is not float:
                self._observe_first(compiled, code, name, value)
                return
            if not -VALUE_LIMIT <= value <= VALUE_LIMIT:  # NaN fails both comparisons
                self.dropped += 1
                return
            n = moments[0] + 1.0
            delta = value - moments[1]
            mean = moments[1] + delta / n
            moments[2] += delta * (value - mean)
            moments[1] = mean
            moments[0] = n
        except Exception:
            self.dropped += 1

    def _observe_first(self, compiled: Compiled, code: int, name: object, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            self.dropped += 1  # a non-number (True is no measurement)
            return
        number = float(value)
        if not -VALUE_LIMIT <= number <= VALUE_LIMIT:
            self.dropped += 1
            return
        values = compiled.arms[code - CONTROL].values
        moments = values.get(name) if isinstance(name, str) else None
        if moments is None:
            if not isinstance(name, str) or not VALUE_NAME_PATTERN.fullmatch(name):
                self.dropped += 1
                return
            names = self._names.setdefault(compiled.key, set())
            if name not in names:
                if len(names) >= VALUE_NAMES_PER_FLAG:
                    self.dropped += 1
                    return
                names.add(name)
            moments = values[name] = [0.0, 0.0, 0.0]
        n = moments[0] + 1.0
        delta = number - moments[1]
        mean = moments[1] + delta / n
        moments[2] += delta * (number - mean)
        moments[1] = mean
        moments[0] = n

    def record_values(
        self, compiled: Compiled, user: object, values: object, attributes: object = None
    ) -> None:
        """``record(..., values={...})``: each item as one ``observe``. Never raises."""
        try:
            items = list(values.items())  # type: ignore[attr-defined]
        except Exception:
            self.dropped += 1
            return
        for name, value in items:
            self.observe(compiled, user, name, value, attributes)
