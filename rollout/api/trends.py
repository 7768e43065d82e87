"""``GET /api/v1/trends``: the error-rate trend of every flag, for the dashboard's list."""

from __future__ import annotations

from flask import Response

from rollout.api.auth import protected_blueprint
from rollout.api.http import render, services
from rollout.api.models import TrendsOut
from rollout.api.spec import documented, responses

bp = protected_blueprint("trends", __name__)


@bp.get("/trends")
@documented(tags=["history"], resp=responses(TrendsOut))
def all_trends() -> Response:
    """Every flag's treatment samples and error rate per 5 minutes over the last two hours of
    its current stage, on one shared time axis."""
    return render(services().trends.trends())
