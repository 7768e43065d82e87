"""Public operational routes: liveness, readiness, Prometheus metrics, the OpenAPI document.

None of these needs a token: load balancers, Prometheus and client generators call them.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rollout.api.http import render, services
from rollout.api.models import HealthOut
from rollout.api.spec import documented, openapi_document, responses

bp = Blueprint("meta", __name__)
TAGS = ["operations"]
REGISTRY = "rollout.metrics"


@bp.get("/healthz")
@documented(tags=TAGS, resp=responses(HealthOut, errors=()), public=True)
def healthz() -> Response:
    """The process is alive (says nothing about Redis; see /readyz)."""
    return render({"status": "ok"})


@bp.get("/readyz")
@documented(tags=TAGS, resp=responses(HealthOut, errors=(503,)), public=True)
def readyz() -> Response:
    """Redis answers: 200, else 503 with the reason."""
    services().health.ping()
    return render({"status": "ready"})


@bp.get("/metrics")
@documented(tags=TAGS, resp=responses(errors=()), public=True)
def metrics() -> Response:
    """Prometheus text format, read from Redis at each scrape."""
    body = generate_latest(current_app.extensions[REGISTRY])
    return Response(body, mimetype=None, content_type=CONTENT_TYPE_LATEST)


@bp.get("/openapi.json")
def openapi() -> Response:
    """This API's OpenAPI 3 document (generated from the pydantic models)."""
    return render(openapi_document())
