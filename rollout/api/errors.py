"""One way to answer an error: ``{"error": {"code", "message"}}`` with the status of ERROR_TABLE.

Rollout errors render through ``core.errors.error_info``; Werkzeug's HTTP errors (unknown route,
wrong method, body too large) are first translated into the matching rollout error, so their
codes also come from the one table. Anything else is a bug: logged here with its traceback,
answered as a bare 500.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from rollout.api.http import MAX_BODY
from rollout.core.errors import (
    AuthError,
    InternalError,
    MalformedRequest,
    MethodNotAllowed,
    PayloadTooLarge,
    RolloutError,
    RouteNotFound,
    UnsupportedMediaType,
    ValidationError,
    error_info,
)
from rollout.core.triggers import HOOK_PREFIX


def shown_path() -> str:
    """The request's path for a log line or a message: a trigger's path carries its secret."""
    path = request.path
    return f"{HOOK_PREFIX}/[redacted]" if path.startswith(HOOK_PREFIX) else path


# {path prefix: renderer} for areas whose errors take another shape; api.ofrep registers
# "/ofrep/" (OFREP's own error bodies, the one exception to the rule above).
ERROR_SHAPES = "rollout.error_shapes"


def render_error(error: RolloutError) -> Response:
    for prefix, renderer in current_app.extensions.get(ERROR_SHAPES, {}).items():
        if request.path.startswith(prefix):
            return renderer(error)  # type: ignore[no-any-return]
    code, status = error_info(error)
    detail: dict[str, str] = {"code": code, "message": error.message}
    if isinstance(error, ValidationError) and error.field:
        detail["field"] = error.field
    response = jsonify({"error": detail})
    response.status_code = status
    if isinstance(error, AuthError):
        response.headers["WWW-Authenticate"] = 'Bearer realm="rollout"'
    if status >= 500:
        # The message says what is wrong (e.g. Redis unreachable); the log says where.
        current_app.logger.warning("%s %s -> %s: %s", request.method, shown_path(), status, error)
    return response


def _translate(error: HTTPException) -> RolloutError:
    status = error.code or 500
    if status == 404:
        return RouteNotFound(f"no route {request.method} {shown_path()}")
    if status == 405:
        allowed = ", ".join(sorted(error.valid_methods or ()))  # type: ignore[attr-defined]
        return MethodNotAllowed(f"{request.method} is not allowed here (allowed: {allowed})")
    if status == 413:
        return PayloadTooLarge(f"the request body is larger than {MAX_BODY} bytes")
    if status == 415:
        return UnsupportedMediaType("send the body as JSON with Content-Type: application/json")
    if status >= 500:
        return InternalError("internal error; the server log has the details")
    return MalformedRequest(error.description or "bad request")


def render_http_error(error: HTTPException) -> Response:
    response = render_error(_translate(error))
    if error.code == 405:
        response.headers["Allow"] = ", ".join(
            sorted(error.valid_methods or ())  # type: ignore[attr-defined]
        )
    return response


def render_unexpected(error: Exception) -> Response:
    current_app.logger.exception("unhandled error on %s %s", request.method, shown_path())
    return render_error(InternalError("internal error; the server log has the details"))


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(RolloutError, render_error)
    app.register_error_handler(HTTPException, render_http_error)
    app.register_error_handler(Exception, render_unexpected)
