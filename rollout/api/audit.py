"""The audit log: what happened to a flag, who did it and why."""

from __future__ import annotations

from flask import Response

from rollout.api.auth import protected_blueprint
from rollout.api.http import query_args, render, services
from rollout.api.models import AuditOut, AuditQuery
from rollout.api.spec import documented, responses

bp = protected_blueprint("audit", __name__)


@bp.get("/audit")
@documented(tags=["audit"], query=AuditQuery, resp=responses(AuditOut))
def audit() -> Response:
    """The newest audit entries, of one flag (?flag=KEY) or of all flags."""
    args = query_args(AuditQuery)
    return render({"entries": services().flags.audit(args["flag"], args["limit"])})
