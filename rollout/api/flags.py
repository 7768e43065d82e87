"""Flag resources: list, create, read, change configuration, delete, set the percentage."""

from __future__ import annotations

import hashlib

from flask import Response, current_app, request

from rollout.api.auth import protected_blueprint
from rollout.api.http import actor, if_match, json_body, render_flag, services
from rollout.api.models import (
    CreateFlag,
    FlagList,
    FlagOut,
    IfMatchHeader,
    PatchFlag,
    SetPercentBody,
    WriteBody,
)
from rollout.api.spec import PATCH_ERRORS, WRITE_ERRORS, documented, responses
from rollout.core.model import Flag
from rollout.core.schema import flag_to_dict

bp = protected_blueprint("flags", __name__)
TAGS = ["flags"]


def _render_list(flags: list[Flag], problems: list[str]) -> tuple[str, str]:
    body = current_app.json.dumps({"flags": [flag_to_dict(f) for f in flags], "problems": problems})
    return body, hashlib.sha1(body.encode(), usedforsecurity=False).hexdigest()


@bp.get("/flags")
@documented(tags=TAGS, resp=responses(FlagList))
def list_flags() -> Response:
    """Every flag, by key; stored values that cannot be read are listed under problems.

    The ETag is a hash of the answer; ``If-None-Match`` with it answers 304 while no flag and
    no status word has changed."""
    body, etag = services().reads.rendered_list(_render_list)
    response = Response(body + "\n", mimetype="application/json")
    response.set_etag(etag)
    response.make_conditional(request)
    return response


@bp.post("/flags")
@documented(tags=TAGS, json=CreateFlag, resp=responses(FlagOut, status=201, errors=WRITE_ERRORS))
def create_flag() -> Response:
    """Create a flag as a draft at 0% (the fields of the TOML file; key is required)."""
    body = json_body(CreateFlag)
    reason = body.pop("reason", None)
    flag = services().flags.create(body.pop("key"), actor=actor(), reason=reason, **body)
    response = render_flag(flag, 201)
    response.headers["Location"] = f"/api/v1/flags/{flag.key}"
    return response


@bp.get("/flags/<key>")
@documented(tags=TAGS, resp=responses(FlagOut))
def get_flag(key: str) -> Response:
    """One flag; its ETag is its version, for a later PATCH with If-Match.

    ``If-None-Match`` with that ETag answers 304 while the version stands. The controller's
    status word is not versioned (DESIGN §2): a poller that shows it reads it from ``/gates``.
    """
    response = render_flag(services().reads.get(key))
    response.make_conditional(request)
    return response


@bp.patch("/flags/<key>")
@documented(
    tags=TAGS, json=PatchFlag, headers=IfMatchHeader, resp=responses(FlagOut, errors=PATCH_ERRORS)
)
def patch_flag(key: str) -> Response:
    """Change configuration: description, stages, auto_advance, gates, allow, deny only."""
    version = if_match()
    body = json_body(PatchFlag)
    reason = body.pop("reason", None)
    flag = services().flags.update(key, body, actor=actor(), reason=reason, if_match=version)
    return render_flag(flag)


@bp.delete("/flags/<key>")
@documented(tags=TAGS, json=WriteBody, resp=responses(status=204, errors=WRITE_ERRORS))
def delete_flag(key: str) -> Response:
    """Delete a flag (its audit history stays)."""
    body = json_body(WriteBody)
    services().flags.delete(key, actor=actor(), reason=body.get("reason"))
    return Response(status=204)


@bp.put("/flags/<key>/percentage")
@documented(tags=TAGS, json=SetPercentBody, resp=responses(FlagOut, errors=WRITE_ERRORS))
def set_percentage(key: str) -> Response:
    """An operator's manual move to a percentage (0-100, at most two decimals)."""
    body = json_body(SetPercentBody)
    flag = services().flags.set_percent(
        key, body["percent"], actor=actor(), reason=body.get("reason")
    )
    return render_flag(flag)
