"""The Flask application factory.

``create_app(services, settings=None)``:
- ``services``: a ``services.container.Services``, built by ``rollout.wiring.build_services``
  (``rollout.wsgi`` does that for gunicorn).
- ``settings``: where the API tokens come from; when None, ``services.settings`` (so tests
  pass one object).

The services live in ``app.extensions["rollout"]``; every view reaches them through
``api.http.services()``. Adding an area means: a module with a blueprint (``protected_blueprint``
for token-guarded routes) and one line in ``BLUEPRINTS``.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Flask, Response, request

from rollout import dashboard
from rollout.api import (
    audit,
    evaluate,
    flags,
    history,
    meta,
    moves,
    ofrep,
    snapshots,
    trends,
    triggers,
    whoami,
)
from rollout.api.auth import EXTENSION as AUTH_EXTENSION
from rollout.api.auth import TokenChecker
from rollout.api.errors import register_error_handlers
from rollout.api.http import MAX_BODY
from rollout.api.metrics import build_registry
from rollout.core.errors import PayloadTooLarge
from rollout.services.container import Services
from rollout.settings import Settings

BLUEPRINTS: list[Blueprint] = [
    meta.bp,
    flags.bp,
    moves.bp,
    evaluate.bp,
    audit.bp,
    snapshots.bp,
    history.bp,
    trends.bp,
    whoami.bp,
    dashboard.bp,
    triggers.bp,
    triggers.hooks,
    ofrep.bp,
]


def _refuse_large_bodies() -> None:
    # Werkzeug enforces MAX_CONTENT_LENGTH only when a body is read; this answers 413 for
    # every route, even one that ignores its body, before any other work is done.
    length = request.content_length
    if length is not None and length > MAX_BODY:
        raise PayloadTooLarge(f"the request body is larger than {MAX_BODY} bytes")


def _no_store(response: Response) -> Response:
    # Flags change by the second; no proxy or browser may answer from a cached copy.
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _replication_header(
    services: Services,
) -> tuple[Callable[[], None], Callable[[Response], Response]]:
    """A write that stood before its replicas confirmed it says so: ``Rollout-Replication``."""

    def before() -> None:
        services.flags.replication_pending()  # nothing left over from this thread's last request

    def after(response: Response) -> Response:
        if services.flags.replication_pending():
            response.headers["Rollout-Replication"] = "pending"
        return response

    return before, after


def create_app(services: Services, settings: Settings | None = None) -> Flask:
    settings = settings or services.settings
    app = Flask("rollout.api")
    # Werkzeug refuses a larger Content-Length, and stops reading a chunked body one byte past
    # the limit; that extra byte is how api.http tells "exactly 64 KiB" from "more".
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY + 1
    app.extensions["rollout"] = services
    app.extensions[AUTH_EXTENSION] = TokenChecker(settings.admin_tokens, settings.read_tokens)
    app.extensions[meta.REGISTRY] = build_registry(services)
    app.before_request(_refuse_large_bodies)
    app.after_request(_no_store)
    before, after = _replication_header(services)
    app.before_request(before)
    app.after_request(after)
    register_error_handlers(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    return app
