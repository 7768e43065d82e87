"""One vocabulary (DESIGN §4's table): each decision of ``core.decide``, the word operators see,
and the event notifications send.

The controller acts on a decision and stores its status word beside the flag; the CLI and the
API show the word; notifiers send the event. Keeping the columns in one table is what stops a
new decision from being shown under an old word. ``hold`` on a sample ratio mismatch has a word
and an event of its own (``sample_ratio_mismatch``), sent once per stage like
``awaiting_approval`` (``core.events``).
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
    event: str | None  # the notification event (None: nothing to tell)
    cause: str = ""  # a row for one cause of the action (a hold on a mismatch); "" = the usual


TERMS: tuple[Term, ...] = (
    Term(Action.KILL, "killed", "kill"),
    Term(Action.HOLD, "hold", "hold"),  # once per stage per gate that holds (core.events)
    Term(Action.ADVANCE, "advanced", "advance"),
    Term(Action.AWAIT_APPROVAL, "awaiting_approval", "awaiting_approval"),  # once per stage
    Term(Action.COMPLETE, "completed", "complete"),
    Term(Action.WATCH, "watching", None),
    # once per stage (core.events), like awaiting_approval
    Term(
        Action.HOLD,
        "sample_ratio_mismatch",
        "sample_ratio_mismatch",
        cause="sample_ratio_mismatch",
    ),
)

STATUS_WORDS: Mapping[Action, str] = MappingProxyType(
    {t.action: t.status for t in TERMS if not t.cause}
)
EVENT_WORDS: Mapping[Action, str | None] = MappingProxyType(
    {t.action: t.event for t in TERMS if not t.cause}
)
# A hold because the arms' shares are off (core.srm): the gates cannot be trusted then.
_MISMATCH = next(t for t in TERMS if t.cause == "sample_ratio_mismatch")
MISMATCH_WORD = _MISMATCH.status
MISMATCH_EVENT = _MISMATCH.event

# Operators' moves are events under their audit action (DESIGN §4); ``complete`` is derived
# from the state change of an advance.
MOVE_EVENTS: tuple[str, ...] = (
    "create", "update", "delete", "set", "advance", "rollback", "pause", "resume", "kill",
    "revive", "complete",
)  # fmt: skip
STATUS_EVENTS: tuple[str, ...] = ("hold", "awaiting_approval", "sample_ratio_mismatch")
EVENT_TYPES: tuple[str, ...] = (*MOVE_EVENTS, *STATUS_EVENTS)
