"""One vocabulary (DESIGN §4's table): each decision of ``core.decide`` and the word operators see.

The controller acts on a decision and stores its status word beside the flag; the CLI, the API
and (later) notifications show the word. Keeping both columns in one table is what stops a new
decision from being shown under an old word. A row may later add the event notifications send,
and ``hold`` on a sample ratio mismatch has a word of its own (``sample_ratio_mismatch``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class Action(StrEnum):
    """What the controller should do next with one flag."""

    KILL = "kill"
    HOLD = "hold"
    ADVANCE = "advance"
    AWAIT_APPROVAL = "await_approval"
    COMPLETE = "complete"
    WATCH = "watch"  # nothing to do but watch: complete, or a flag the controller leaves alone


@dataclass(frozen=True, slots=True)
class Term:
    """One row of the table."""

    action: Action
    status: str  # the word in the flag's status, shown to operators
    cause: str = ""  # a row for one cause of the action (a hold on a mismatch); "" = the usual


TERMS: tuple[Term, ...] = (
    Term(Action.KILL, "killed"),
    Term(Action.HOLD, "hold"),
    Term(Action.ADVANCE, "advanced"),
    Term(Action.AWAIT_APPROVAL, "awaiting_approval"),
    Term(Action.COMPLETE, "completed"),
    Term(Action.WATCH, "watching"),
    Term(Action.HOLD, "sample_ratio_mismatch", cause="sample_ratio_mismatch"),
)

STATUS_WORDS: Mapping[Action, str] = MappingProxyType(
    {t.action: t.status for t in TERMS if not t.cause}
)
# A hold because the arms' shares are off (core.srm): the gates cannot be trusted then.
MISMATCH_WORD = next(t.status for t in TERMS if t.cause == "sample_ratio_mismatch")
