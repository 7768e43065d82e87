"""core.transitions.legal_moves: which buttons the dashboard enables, and why the others not."""

from __future__ import annotations

from typing import Any

import pytest

from rollout.core.schema import flag_from_dict
from rollout.core.transitions import MOVES, legal_moves

PLAN = [{"percent": 10}, {"percent": 50}, {"percent": 100}]


def flag(**fields: Any) -> Any:
    return flag_from_dict({"key": "F", "stages": PLAN, "version": 3, **fields})


@pytest.mark.parametrize(
    ("fields", "open_moves"),
    [
        ({"state": "draft", "percent": 0}, {"advance", "kill", "set"}),
        ({"state": "rolling", "percent": 10, "stage": 0},
         {"advance", "rollback", "pause", "kill", "set"}),
        ({"state": "paused", "percent": 50, "stage": 1},
         {"advance", "rollback", "resume", "kill", "set"}),
        ({"state": "complete", "percent": 100, "stage": 2}, {"rollback", "kill", "set"}),
        (
            {
                "state": "killed",
                "percent": 0,
                "kill": {"reason": "r", "by": "b", "at": 1, "state_before": "rolling",
                         "stage_before": 0, "percent_before": 10},
            },
            {"revive"},
        ),
    ],
)  # fmt: skip
def test_open_moves_by_state(fields: dict[str, Any], open_moves: set[str]) -> None:
    found = legal_moves(flag(**fields))
    assert set(found) == set(MOVES)
    assert {move for move, why in found.items() if why is None} == open_moves
    for move, why in found.items():
        if why is not None:
            assert "F" in why, (move, why)  # every refusal names the flag, as the API's does


def test_a_flag_without_stages_cannot_advance_but_can_be_set() -> None:
    found = legal_moves(flag_from_dict({"key": "F", "state": "draft", "percent": 0}))
    assert "no stages" in (found["advance"] or "")
    assert found["set"] is None
