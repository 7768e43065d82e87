"""Who gets a flag and why, and what its gates read: the evidence operators look at."""

from __future__ import annotations

from flask import Response, request

from rollout.api.auth import protected_blueprint
from rollout.api.http import query_args, render, services
from rollout.api.models import EvaluateQuery, EvaluationOut, GatesOut
from rollout.api.spec import documented, responses

bp = protected_blueprint("evaluate", __name__)


@bp.get("/flags/<key>/evaluate")
@documented(tags=["evaluate"], query=EvaluateQuery, resp=responses(EvaluationOut))
def evaluate(key: str) -> Response:
    """What the flag answers for one user: enabled, the reason, and the user's bucket.

    Context attributes for the targeting rules come as ``attr.NAME=VALUE`` parameters
    (``?user=u1&attr.email=a@example.com&attr.plan=team``), any number of them. Their values
    are strings, as every query parameter is: a comparison (``gt``) or a boolean ``in`` needs a
    typed value, which the SDK, OFREP and ``rollout check --attr age:=42`` pass.
    """
    user = query_args(EvaluateQuery)["user"]
    attributes = {
        name.removeprefix("attr."): request.args.get(name)
        for name in request.args
        if name.startswith("attr.")
    }
    return render(services().flags.evaluate(key, user, attributes).to_dict())


@bp.get("/flags/<key>/gates")
@documented(tags=["gates"], resp=responses(GatesOut))
def gates(key: str) -> Response:
    """Readings per gate (window and stage) and per arm, with the controller's last decision."""
    found = services()
    return render(found.gates.report(found.flags.get(key)))
