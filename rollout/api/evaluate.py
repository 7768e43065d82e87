"""Who gets a flag, and why: the same evaluation as the SDK, for operators."""

from __future__ import annotations

from flask import Response

from rollout.api.auth import protected_blueprint
from rollout.api.http import query_args, render, services
from rollout.api.models import EvaluateQuery, EvaluationOut
from rollout.api.spec import documented, responses

bp = protected_blueprint("evaluate", __name__)


@bp.get("/flags/<key>/evaluate")
@documented(tags=["evaluate"], query=EvaluateQuery, resp=responses(EvaluationOut))
def evaluate(key: str) -> Response:
    """What the flag answers for one user: enabled, the reason, and the user's bucket."""
    user = query_args(EvaluateQuery)["user"]
    return render(services().flags.evaluate(key, user).to_dict())
