"""Request parsing and response rendering shared by every view.

Each helper turns bad input into a ``RolloutError`` (rendered by ``api.errors``), so a view is
parse -> service -> render, and nothing a client sends can escape as a 500.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any, NoReturn

from flask import Response, current_app, g, jsonify, request
from pydantic import BaseModel
from pydantic import ValidationError as PydanticError

from rollout.core.errors import (
    MalformedRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationError,
)
from rollout.core.model import Flag
from rollout.core.schema import flag_to_dict
from rollout.services.container import Services

MAX_BODY = 64 * 1024
_ETAG = re.compile(r'^\s*(?:"(\d{1,18})"|(\d{1,18}))\s*$')


def services() -> Services:
    return current_app.extensions["rollout"]  # type: ignore[no-any-return]


def actor() -> str:
    """The name of the token that authorised this request (set by ``api.auth``)."""
    return str(g.rollout_actor)


# -- JSON in -------------------------------------------------------------------------------


class _ExactFloat(float):
    """A JSON number that a double cannot hold exactly (``12.50000000000000001``).

    ``str()`` gives back the literal, so ``core.units.parse_percent`` sees what the client sent
    and refuses it rather than accepting the silently rounded double.
    """

    literal: str

    def __new__(cls, literal: str) -> _ExactFloat:
        number = super().__new__(cls, literal)
        number.literal = literal
        return number

    def __str__(self) -> str:
        return self.literal

    __repr__ = __str__


def _parse_float(literal: str) -> float:
    number = float(literal)
    if Decimal(literal) != Decimal(repr(number)):
        return _ExactFloat(literal)
    return number


def _refuse_constant(name: str) -> NoReturn:
    # Python's json takes NaN and Infinity; JSON does not, and neither do we.
    raise ValueError(f"{name} is not valid JSON")


_ABSENT = object()


def _read_json() -> Any:
    """The body as JSON, or _ABSENT when there is none."""
    data = request.get_data(cache=True)
    if len(data) > MAX_BODY:  # a chunked body has no Content-Length to refuse up front
        raise PayloadTooLarge(f"the request body is larger than {MAX_BODY} bytes")
    if not data:
        return _ABSENT
    if not request.is_json:
        raise UnsupportedMediaType("send the body as JSON with Content-Type: application/json")
    try:
        value = json.loads(data, parse_float=_parse_float, parse_constant=_refuse_constant)
    except RecursionError:
        raise MalformedRequest("the body is nested too deeply") from None
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise MalformedRequest(f"the body is not valid JSON: {error}") from None
    try:
        # Lone surrogates ("\ud800") parse, but no store or hash can encode them.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedRequest("the body holds text that is not valid Unicode") from None
    return value


def _field(loc: tuple[int | str, ...]) -> str:
    """pydantic's ('stages', 1, 'percent') as core.schema names it: stages[1].percent."""
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name


def _check(model: type[BaseModel], data: Any) -> None:
    try:
        model.model_validate(data)
    except PydanticError as error:
        first = error.errors()[0]
        if first["type"] == "extra_forbidden" and len(first["loc"]) == 1:
            allowed = ", ".join(f.alias or n for n, f in model.model_fields.items())
            message = f"is not accepted here (allowed: {allowed})"
        else:
            message = first["msg"][:1].lower() + first["msg"][1:]
        raise ValidationError(message, _field(tuple(first["loc"])) or None) from None


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The body as a JSON object checked against ``model``; no body counts as ``{}``.

    The raw values are returned: the services check them again with ``core.schema``, which is
    stricter about values (percent decimals) than any JSON schema can be.
    """
    body = _read_json()
    if body is _ABSENT:
        body = {}
    if not isinstance(body, dict):
        raise ValidationError("must be a JSON object", "body")
    _check(model, body)
    return body


def query_args(model: type[BaseModel]) -> dict[str, Any]:
    """Query parameters checked (and converted: "5" -> 5) by ``model``; first value wins."""
    raw = {name: request.args.get(name) for name in request.args}
    try:
        return model.model_validate(raw).model_dump()
    except PydanticError:
        _check(model, raw)  # raises with the field named
        raise


def if_match() -> int | None:
    """The version an ``If-Match`` header requires; None for no header or ``*``."""
    raw = request.headers.get("If-Match")
    if raw is None or raw.strip() == "*":
        return None
    match = _ETAG.match(raw)
    if match is None:
        raise MalformedRequest('must be the ETag of the flag, e.g. "7"', "If-Match")
    return int(match.group(1) or match.group(2))


# -- JSON out ------------------------------------------------------------------------------


def render(data: Any, status: int = 200) -> Response:
    response = jsonify(data)
    response.status_code = status
    return response


# Rendered bodies of the flag values the read cache hands out, by identity: the same value is
# served thousands of times between two changes, and rendering it is a third of a GET's time.
_RENDERED: dict[int, tuple[Flag, str]] = {}
_RENDERED_MAX = 4096


def _flag_body(flag: Flag) -> str:
    found = _RENDERED.get(id(flag))
    if found is not None and found[0] is flag:
        return found[1]
    body = current_app.json.dumps(flag_to_dict(flag))
    if len(_RENDERED) >= _RENDERED_MAX:
        _RENDERED.clear()  # values churn slowly; starting over is simpler than an LRU
    _RENDERED[id(flag)] = (flag, body)  # holding the flag keeps its id from being reused
    return body


def render_flag(flag: Flag, status: int = 200) -> Response:
    response = Response(_flag_body(flag) + "\n", status=status, mimetype="application/json")
    response.headers["ETag"] = f'"{flag.version}"'
    return response
