"""``GET /api/v1/whoami``: whose token this is, so the dashboard knows to offer writes or not."""

from __future__ import annotations

from flask import Response, g

from rollout.api.auth import protected_blueprint
from rollout.api.http import actor, render
from rollout.api.models import WhoamiOut
from rollout.api.spec import documented, responses

bp = protected_blueprint("whoami", __name__)


@bp.get("/whoami")
@documented(tags=["session"], resp=responses(WhoamiOut, errors=(401, 503)))
def whoami() -> Response:
    """The token's name and role (admin or read); 401 for a missing or unknown token."""
    return render({"name": actor(), "role": g.rollout_role})
