"""OFREP, the OpenFeature Remote Evaluation Protocol: any language's OpenFeature SDK over HTTP.

- ``POST /ofrep/v1/evaluate/flags/{key}``: one flag for ``{"context": {"targetingKey", ...}}``.
- ``POST /ofrep/v1/evaluate/flags``: every flag, with a strong ``ETag`` (a hash of the body)
  and ``If-None-Match`` -> 304.

Answers come from the worker's synced in-memory flags only (``FlagReads.synced``): an unknown
key is ``FLAG_NOT_FOUND`` without a Redis round trip, and before the first sync (or during an
outage) the answer is 503. Evaluation is ``core.evaluation.evaluate``, translated by
``core.openfeature`` exactly as the in-process provider does.

Auth: a read or admin token, as ``Authorization: Bearer TOKEN`` or ``X-API-Key: TOKEN``. No
credentials: 401; a token that is no one's: 403. Every error under ``/ofrep/`` takes OFREP's
shape, ``{key, errorCode, errorDetails}`` for one flag and ``{errorCode, errorDetails}``
otherwise: the one exception to the API's ``{"error": ...}`` rule. Bodies are read as JSON
whatever their Content-Type; an empty body is a context without a targeting key. CORS for the
origins of ``ROLLOUT_CORS_ORIGINS``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

from flask import Blueprint, Response, current_app, request
from flask.blueprints import BlueprintSetupState

from rollout.api.auth import EXTENSION as AUTH_EXTENSION
from rollout.api.auth import TokenChecker, bearer_token
from rollout.api.errors import ERROR_SHAPES
from rollout.api.http import MAX_BODY
from rollout.api.ofrep_models import (
    BULK_RESPONSES,
    FLAG_RESPONSES,
    BulkHeaders,
    EvaluationRequest,
)
from rollout.api.spec import API_KEY, BEARER, documented
from rollout.core.errors import (
    AuthError,
    FlagNotFound,
    Forbidden,
    InvalidContext,
    MalformedRequest,
    PayloadTooLarge,
    RolloutError,
    StorageError,
    TargetingKeyMissing,
    error_info,
)
from rollout.core.evaluation import Evaluation, Reason, evaluate
from rollout.core.model import Flag
from rollout.core.openfeature import PLACEHOLDER_USER, Answer, answer
from rollout.core.rules import SCALARS

log = logging.getLogger("rollout.ofrep")

PREFIX = "/ofrep/"
MAX_TARGETING_KEY = 1024
# A worker's cache starts with its first request: that one waits this long for the first load.
FIRST_SYNC_WAIT = 2.0
EXTENSION = "rollout.ofrep"
CORS_ALLOW_HEADERS = "Authorization, X-API-Key, If-None-Match, Content-Type"
CORS_MAX_AGE = "600"
TAGS = ["OFREP"]
SECURITY: list[dict[str, list[str]]] = [{BEARER: []}, {API_KEY: []}]

bp = Blueprint("ofrep", __name__, url_prefix="/ofrep/v1")


# -- errors ----------------------------------------------------------------------------------


def _error_code(error: RolloutError) -> str:
    if isinstance(error, FlagNotFound):
        return "FLAG_NOT_FOUND"
    if isinstance(error, MalformedRequest):
        return "PARSE_ERROR"
    if isinstance(error, InvalidContext):
        return "INVALID_CONTEXT"
    if isinstance(error, TargetingKeyMissing):
        return "TARGETING_KEY_MISSING"
    return "GENERAL"


def render_ofrep_error(error: RolloutError) -> Response:
    """OFREP's error body, with the status of ``core.errors``' table."""
    _code, status = error_info(error)
    body: dict[str, str] = {"errorCode": _error_code(error), "errorDetails": error.message}
    key = (request.view_args or {}).get("key")
    if isinstance(key, str):
        body = {"key": key, **body}
    response = _json(body, status)
    if isinstance(error, AuthError):
        response.headers["WWW-Authenticate"] = 'Bearer realm="rollout"'
    if isinstance(error, StorageError):
        response.headers["Retry-After"] = "1"
    if status >= 500:
        current_app.logger.warning("%s %s -> %s: %s", request.method, request.path, status, error)
    return _cors(response)


class SyncedFlags(Protocol):
    def synced(self, timeout: float = 0.0) -> dict[str, Flag] | None: ...


@dataclass(frozen=True)
class Wiring:
    """What the views use, looked up once per app rather than once per request."""

    checker: TokenChecker
    cors_origins: frozenset[str]
    reads: SyncedFlags


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    app = state.app
    app.extensions.setdefault(ERROR_SHAPES, {})[PREFIX] = render_ofrep_error
    found = app.extensions["rollout"]
    app.extensions[EXTENSION] = Wiring(
        app.extensions[AUTH_EXTENSION], frozenset(found.settings.cors_origins), found.reads
    )


def _wiring() -> Wiring:
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]


# -- auth and CORS ---------------------------------------------------------------------------
# Called by the views, not registered as blueprint hooks: each Flask hook costs a request more
# than the checks themselves, and these routes are the hottest the API has.


def _authorize(environ: dict[str, Any], checker: TokenChecker) -> None:
    authorization = environ.get("HTTP_AUTHORIZATION")
    token = bearer_token(authorization) if authorization else None
    if token is None:
        token = (environ.get("HTTP_X_API_KEY") or "").strip() or None
    if token is None:
        raise AuthError("missing credentials: send Authorization: Bearer TOKEN or X-API-Key")
    if checker.find(token) is None:
        raise Forbidden("this token gives no access")


def _cors(response: Response, allowed: frozenset[str] | None = None) -> Response:
    origin = request.environ.get("HTTP_ORIGIN")
    if origin is None:
        return response
    if allowed is None:
        allowed = _wiring().cors_origins
    if origin not in allowed and "*" not in allowed:
        return response
    headers = response.headers
    headers["Access-Control-Allow-Origin"] = origin
    headers["Vary"] = "Origin"
    headers["Access-Control-Expose-Headers"] = "ETag"
    if request.method == "OPTIONS":  # the preflight (it carries no credentials)
        headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
        headers["Access-Control-Max-Age"] = CORS_MAX_AGE
    return response


# -- parsing ---------------------------------------------------------------------------------


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


# Built once: json.loads and json.dumps with options build a new decoder/encoder every call.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _context(environ: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """(targeting key or None, attributes) from the body, whatever its Content-Type."""
    length = request.content_length  # over MAX_BODY was refused before any view ran
    if length is not None:
        data = environ["wsgi.input"].read(length)
    else:
        data = request.get_data(cache=False)  # chunked: werkzeug stops one byte past the limit
    if len(data) > MAX_BODY:  # a chunked body has no Content-Length to refuse up front
        raise PayloadTooLarge(f"the request body is larger than {MAX_BODY} bytes")
    if not data.strip():
        return None, {}
    try:
        body = _DECODER.decode(data.decode("utf-8"))  # JSON on the wire is UTF-8 (RFC 8259)
    except RecursionError:
        raise MalformedRequest("the body is nested too deeply") from None
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise MalformedRequest(f"the body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise MalformedRequest("the body must be a JSON object")
    context = body.get("context")
    if context is None:
        return None, {}
    if not isinstance(context, dict):
        raise InvalidContext("must be a JSON object", "context")
    attributes = dict(context)
    key = attributes.pop("targetingKey", None)
    if key is None or key == "":
        return None, attributes
    if not isinstance(key, str):
        raise InvalidContext("must be a string", "context.targetingKey")
    if len(key) > MAX_TARGETING_KEY:
        raise InvalidContext(
            f"is longer than {MAX_TARGETING_KEY} characters", "context.targetingKey"
        )
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800") parses but cannot be hashed
        raise InvalidContext("is not valid Unicode", "context.targetingKey") from None
    return key, attributes


def _flags(reads: SyncedFlags) -> dict[str, Flag]:
    flags = reads.synced(FIRST_SYNC_WAIT)
    if flags is None:
        raise StorageError("flags are not synced from Redis yet; retry shortly")
    return flags


def _evaluation(flag: Flag, user: str | None, attributes: dict[str, Any]) -> Evaluation:
    if flag.rules and attributes:
        _report_unusable(flag, attributes)
    return evaluate(flag, PLACEHOLDER_USER if user is None else user, attributes=attributes or None)


# An answer's JSON depends only on the flag value, the evaluation's answer and reason, and
# whether a key was given: it is rendered once per combination (a handful per flag) and found
# again by the value's identity, as api.http does for GETs. Flag values change slowly; the
# cache starts over when full.
_Slot = tuple[bool, Reason, bool]
_RENDERED: dict[int, tuple[Flag, dict[_Slot, tuple[str, Answer]]]] = {}
_RENDERED_MAX = 4096


def _rendered(flag: Flag, evaluation: Evaluation, has_key: bool) -> tuple[str, Answer]:
    held = _RENDERED.get(id(flag))
    if held is None or held[0] is not flag:
        if len(_RENDERED) >= _RENDERED_MAX:
            _RENDERED.clear()
        held = (flag, {})
        _RENDERED[id(flag)] = held  # holding the flag keeps its id from being reused
    slot = (evaluation.enabled, evaluation.reason, has_key)
    found = held[1].get(slot)
    if found is None:
        result = answer(flag.key, evaluation, flag, has_targeting_key=has_key)
        found = held[1][slot] = (_ENCODER.encode(_entry(flag.key, result)), result)
    return found


def _entry(key: str, found: Answer) -> dict[str, Any]:
    if found.error is not None:
        return {"key": key, "errorCode": found.error, "errorDetails": found.message}
    return {
        "key": key,
        "value": found.value,
        "variant": found.variant,
        "reason": found.reason,
        "metadata": found.metadata,
    }


_REPORTED: set[tuple[str, str]] = set()  # (flag, attribute) already logged by this worker


def _report_unusable(flag: Flag, attributes: dict[str, Any]) -> None:
    """A context value that no rule can use (a list, an object): logged once per flag and
    attribute, then ignored (the rule does not match). Only attributes rules name get here."""
    for rule in flag.rules:
        value = attributes.get(rule.attribute)
        if value is None or isinstance(value, SCALARS):
            continue
        if (flag.key, rule.attribute) not in _REPORTED:
            _REPORTED.add((flag.key, rule.attribute))
            log.warning(
                "flag %s: context attribute %r is a %s, not a string, number or boolean; "
                "rules ignore it",
                flag.key,
                rule.attribute,
                type(value).__name__,
            )


def _json(body: Any, status: int = 200) -> Response:
    return Response(_ENCODER.encode(body), status=status, content_type="application/json")


def _preflight(wiring: Wiring) -> Response:
    return _cors(Response(status=204), wiring.cors_origins)


# -- routes ----------------------------------------------------------------------------------


ROUTE = {"methods": ["POST", "OPTIONS"], "provide_automatic_options": False}


@bp.route("/evaluate/flags/<key>", **ROUTE)
@documented(tags=TAGS, json=EvaluationRequest, resp=FLAG_RESPONSES, security=SECURITY)
def evaluate_flag(key: str) -> Response:
    """OFREP: one boolean flag for a context (its targetingKey is the user)."""
    environ, wiring = request.environ, _wiring()
    if environ["REQUEST_METHOD"] == "OPTIONS":
        return _preflight(wiring)
    _authorize(environ, wiring.checker)
    user, attributes = _context(environ)
    flag = _flags(wiring.reads).get(key)
    if flag is None:
        raise FlagNotFound(key)
    text, found = _rendered(flag, _evaluation(flag, user, attributes), user is not None)
    if found.error is not None:
        raise TargetingKeyMissing(found.message)
    return _cors(Response(text, content_type="application/json"), wiring.cors_origins)


@bp.route("/evaluate/flags", **ROUTE)
@documented(
    tags=TAGS, json=EvaluationRequest, headers=BulkHeaders, resp=BULK_RESPONSES, security=SECURITY
)
def evaluate_flags() -> Response:
    """OFREP: every flag for a context, with an ETag; If-None-Match answers 304."""
    environ, wiring = request.environ, _wiring()
    if environ["REQUEST_METHOD"] == "OPTIONS":
        return _preflight(wiring)
    _authorize(environ, wiring.checker)
    user, attributes = _context(environ)
    flags = _flags(wiring.reads)
    has_key = user is not None
    entries = [
        _rendered(flags[key], _evaluation(flags[key], user, attributes), has_key)[0]
        for key in sorted(flags)
    ]
    body = ('{"flags":[' + ",".join(entries) + "]}").encode()
    etag = f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'
    if _none_match(environ.get("HTTP_IF_NONE_MATCH"), etag):
        response = Response(status=304)
    else:
        response = Response(body, content_type="application/json")
    response.headers["ETag"] = etag
    return _cors(response, wiring.cors_origins)


def _none_match(header: str | None, etag: str) -> bool:
    """Does ``If-None-Match`` name ``etag`` (weak comparison, as RFC 9110 says for it)?"""
    if header is None:
        return False
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False
