"""The lifecycle moves of DESIGN §2, and the emergency stops (kill, kill-all)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response

from rollout.api.auth import protected_blueprint
from rollout.api.http import actor, json_body, render, render_flag, services
from rollout.api.models import AdvanceBody, FlagOut, KillAllOut, KillBody, MovesOut, WriteBody
from rollout.api.spec import WRITE_ERRORS, documented, responses
from rollout.core.schema import flag_to_dict
from rollout.core.transitions import legal_moves

bp = protected_blueprint("moves", __name__)
TAGS = ["moves"]


def _move_doc() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The document of a move that takes only an optional reason."""
    return documented(tags=TAGS, json=WriteBody, resp=responses(FlagOut, errors=WRITE_ERRORS))


@bp.get("/flags/<key>/moves")
@documented(tags=TAGS, resp=responses(MovesOut))
def moves(key: str) -> Response:
    """Which moves the flag's state allows now, and why each other one is refused."""
    flag = services().reads.get(key)
    return render({"key": flag.key, "version": flag.version, "moves": legal_moves(flag)})


@bp.post("/flags/<key>/advance")
@documented(tags=TAGS, json=AdvanceBody, resp=responses(FlagOut, errors=WRITE_ERRORS))
def advance(key: str) -> Response:
    """Go: start the first stage, or move to the next; refused while a gate fails unless forced."""
    body = json_body(AdvanceBody)
    flag = services().flags.advance(
        key, actor=actor(), reason=body.get("reason"), force=body.get("force", False)
    )
    return render_flag(flag)


@bp.post("/flags/<key>/rollback")
@_move_doc()
def rollback(key: str) -> Response:
    """Back one stage; from the first stage, back to draft (0%)."""
    body = json_body(WriteBody)
    return render_flag(services().flags.rollback(key, actor=actor(), reason=body.get("reason")))


@bp.post("/flags/<key>/pause")
@_move_doc()
def pause(key: str) -> Response:
    """Stop automatic advancing (the flag keeps serving its percentage)."""
    body = json_body(WriteBody)
    return render_flag(services().flags.pause(key, actor=actor(), reason=body.get("reason")))


@bp.post("/flags/<key>/resume")
@_move_doc()
def resume(key: str) -> Response:
    """Allow automatic advancing again."""
    body = json_body(WriteBody)
    return render_flag(services().flags.resume(key, actor=actor(), reason=body.get("reason")))


@bp.post("/flags/<key>/kill")
@documented(tags=TAGS, json=KillBody, resp=responses(FlagOut, errors=WRITE_ERRORS))
def kill(key: str) -> Response:
    """Turn the flag off for everyone now. Idempotent: killing a killed flag changes nothing."""
    body = json_body(KillBody)
    return render_flag(services().flags.kill(key, reason=body["reason"], actor=actor()))


@bp.post("/flags/<key>/revive")
@_move_doc()
def revive(key: str) -> Response:
    """Bring a killed flag back to the state, stage and percentage it was killed at."""
    body = json_body(WriteBody)
    return render_flag(services().flags.revive(key, actor=actor(), reason=body.get("reason")))


@bp.post("/kill-all")
@documented(tags=TAGS, json=KillBody, resp=responses(KillAllOut, errors=WRITE_ERRORS))
def kill_all() -> Response:
    """Kill every rolling or paused flag at once: the bad-day button."""
    body = json_body(KillBody)
    killed = services().flags.kill_all(reason=body["reason"], actor=actor())
    return render({"killed": [flag_to_dict(f) for f in killed]})
