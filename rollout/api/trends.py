"""``GET /api/v1/trends``: the error-rate trend of every flag, for the dashboard's list."""

from __future__ import annotations

from flask import Response

from rollout.api.auth import protected_blueprint
from rollout.api.http import render, services
from rollout.api.models import TrendsOut
from rollout.api.spec import documented, responses
from rollout.core.units import to_ms
from rollout.services.trends import trends

bp = protected_blueprint("trends", __name__)


@bp.get("/trends")
@documented(tags=["history"], resp=responses(TrendsOut))
def all_trends() -> Response:
    """Every flag's treatment samples and error rate per 5 minutes over its current stage's
    last two hours, on one shared time axis."""
    found = services()
    return render(trends(found.history, found.flags.list_flags(), to_ms(found.clock())))
