"""Triggers: an admin creates one for a flag; the alerting stack POSTs to its URL to kill it.

``POST /api/v1/flags/{key}/triggers`` (admin token) answers the URL with its secret, once;
``DELETE /api/v1/flags/{key}/triggers/{id}`` (admin token) removes one, through the service
method ``rollout trigger delete`` calls.
``POST /hooks/triggers/{id}/{secret}`` needs no token: the secret in the path is the
credential. Its body is read as JSON whatever the Content-Type says (``curl -d @alert.json``
sends a form type, and a resolved alert must still not kill); a wrong id, a wrong secret and a
deleted trigger all answer the same 404.
"""

from __future__ import annotations

from flask import Blueprint, Response, request
from pydantic import BaseModel, Field

from rollout.api.auth import protected_blueprint
from rollout.api.errors import render_error
from rollout.api.http import MAX_BODY, actor, json_body, render, services
from rollout.api.spec import WRITE_ERRORS, documented, responses
from rollout.core.errors import PayloadTooLarge, RateLimited
from rollout.core.triggers import DEFAULT_NAME

bp = protected_blueprint("triggers", __name__)
hooks = Blueprint("hooks", __name__)
TAGS = ["triggers"]


class CreateTrigger(BaseModel):
    model_config = {"extra": "forbid", "strict": True}
    name: str = Field(
        DEFAULT_NAME,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$",
        description="shown in the audit log as the kill's actor trigger:NAME",
    )


class TriggerOut(BaseModel):
    id: str
    flag: str
    name: str
    created_at: str | None
    created_by: str
    last_fired_at: str | None


class TriggerCreated(TriggerOut):
    url: str = Field(description="the hook URL with its secret; shown this once, never again")


class TriggerList(BaseModel):
    triggers: list[TriggerOut]


class FiredOut(BaseModel):
    flag: str
    killed: bool
    message: str


@bp.post("/flags/<key>/triggers")
@documented(
    tags=TAGS, json=CreateTrigger, resp=responses(TriggerCreated, status=201, errors=WRITE_ERRORS)
)
def create_trigger(key: str) -> Response:
    """Create a trigger for the flag: a URL whose POST kills it (audited on the flag)."""
    body = json_body(CreateTrigger)
    created = services().triggers.create(key, actor=actor(), name=body.get("name", DEFAULT_NAME))
    return render(created.to_dict(), 201)


@bp.get("/flags/<key>/triggers")
@documented(tags=TAGS, resp=responses(TriggerList))
def list_triggers(key: str) -> Response:
    """The flag's triggers, without their secrets, and when each last killed the flag."""
    services().flags.get(key)
    return render({"triggers": [t.to_dict() for t in services().triggers.list(key)]})


@bp.delete("/flags/<key>/triggers/<trigger_id>")
@documented(tags=TAGS, resp=responses(status=204, errors=WRITE_ERRORS))
def delete_trigger(key: str, trigger_id: str) -> Response:
    """Delete one of the flag's triggers: its URL answers 404 at once (audited on the flag).
    An unknown id, a trigger of another flag and an unknown flag are the same 404."""
    services().triggers.delete(trigger_id, actor=actor(), flag=key)
    return Response(status=204)


@hooks.post("/hooks/triggers/<trigger_id>/<secret>")
@documented(tags=TAGS, resp=responses(FiredOut, errors=(404, 413, 429, 503)), public=True)
def fire(trigger_id: str, secret: str) -> Response:
    """Kill the trigger's flag: any body, Alertmanager's "firing" or nothing; "resolved" does
    nothing. No token: the secret in the path is the credential. Over 10 POSTs/s: 429."""
    data = request.get_data(cache=False)
    if len(data) > MAX_BODY:
        raise PayloadTooLarge(f"the request body is larger than {MAX_BODY} bytes")
    try:
        fired = services().triggers.fire(trigger_id, secret, data)
    except RateLimited as error:
        response = render_error(error)
        response.headers["Retry-After"] = str(error.retry_after)
        return response
    return render(fired.to_dict())
