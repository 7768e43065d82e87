"""One vocabulary (DESIGN §4's table): each decision of ``core.decide``, the word operators see,
and the event notifications send.

The controller acts on a decision and stores its status word beside the flag; the CLI and the
API show the word; notifiers send the event. Keeping the columns in one table is what stops a
new decision from being shown under an old word. ``hold`` on a sample ratio mismatch gets a
word and an event of its own (``sample_ratio_mismatch``) once that check exists.
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


TERMS: tuple[Term, ...] = (
    Term(Action.KILL, "killed", "kill"),
    Term(Action.HOLD, "hold", "hold"),  # once per stage per gate that holds (core.events)
    Term(Action.ADVANCE, "advanced", "advance"),
    Term(Action.AWAIT_APPROVAL, "awaiting_approval", "awaiting_approval"),  # once per stage
    Term(Action.COMPLETE, "completed", "complete"),
    Term(Action.WATCH, "watching", None),
)

STATUS_WORDS: Mapping[Action, str] = MappingProxyType({t.action: t.status for t in TERMS})
EVENT_WORDS: Mapping[Action, str | None] = MappingProxyType({t.action: t.event for t in TERMS})

# Operators' moves are events under their audit action (DESIGN §4); ``complete`` is derived
# from the state change of an advance.
MOVE_EVENTS: tuple[str, ...] = (
    "create", "update", "delete", "set", "advance", "rollback", "pause", "resume", "kill",
    "revive", "complete",
)  # fmt: skip
STATUS_EVENTS: tuple[str, ...] = ("hold", "awaiting_approval", "sample_ratio_mismatch")
EVENT_TYPES: tuple[str, ...] = (*MOVE_EVENTS, *STATUS_EVENTS)
