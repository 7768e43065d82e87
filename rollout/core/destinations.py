"""Notification destinations (``[notify.NAME]`` in the apply file), as pure values.

A destination names the environment variables that hold its URL and signing secret, never
the values: the file and Redis hold nothing secret. ``mask_url`` is how a URL is ever shown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

from rollout.core.errors import ValidationError
from rollout.core.vocabulary import EVENT_TYPES

NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
ENV_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
GLOB_PATTERN = re.compile(r"^[A-Za-z0-9_.*?\[\]!-]{1,128}$")
FORMATS = ("json", "slack")
FIELDS = ("url_env", "format", "events", "flags", "secret_env")
MAX_GLOBS = 100


@dataclass(frozen=True, slots=True)
class Destination:
    name: str
    url_env: str
    format: str = "json"
    events: tuple[str, ...] = EVENT_TYPES
    flags: tuple[str, ...] = ("*",)
    secret_env: str | None = None
    created_at: int = 0  # events older than this are never sent (a new destination no backlog)

    def wants(self, event_type: str, flag: str) -> bool:
        if event_type != "test" and event_type not in self.events:
            return False
        return any(fnmatchcase(flag, pattern) for pattern in self.flags)

    def config(self) -> dict[str, Any]:
        """The file's fields, in the file's form (what apply diffs)."""
        return {
            "url_env": self.url_env,
            "format": self.format,
            "events": list(self.events),
            "flags": list(self.flags),
            "secret_env": self.secret_env,
        }

    def to_stored(self) -> dict[str, Any]:
        return {"name": self.name, **self.config(), "created_at": self.created_at}


def _env(value: object, field: str) -> str:
    if not isinstance(value, str) or not ENV_PATTERN.fullmatch(value):
        raise ValidationError(
            "must name an environment variable (letters, digits, _; not starting with a digit)",
            field,
        )
    return value


def _glob(value: object, field: str) -> str:
    if not isinstance(value, str) or not GLOB_PATTERN.fullmatch(value):
        raise ValidationError(
            "must be a glob of flag-key characters and * ? [ ] ! (e.g. 'PROMPT_*')", field
        )
    depth = 0
    for ch in value:
        depth += 1 if ch == "[" else -1 if ch == "]" else 0
        if depth not in (0, 1):
            raise ValidationError(f"{value!r} has unbalanced [ ]", field)
    if depth:
        raise ValidationError(f"{value!r} has unbalanced [ ]", field)
    return value


def _strings(value: object, field: str) -> list[object]:
    if not isinstance(value, list) or not value or len(value) > MAX_GLOBS:
        raise ValidationError(f"must be a non-empty list (at most {MAX_GLOBS})", field)
    return value


def parse_destination(name: object, table: object, created_at: int = 0) -> Destination:
    """One ``[notify.NAME]`` table; a ValidationError names the field (``events[1]``)."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValidationError("must be a letter, then up to 63 of A-Z a-z 0-9 _ -", "name")
    if not isinstance(table, Mapping):
        raise ValidationError("must be a table")
    unknown = sorted(set(table) - set(FIELDS))
    if unknown:
        raise ValidationError(f"is not accepted here (allowed: {', '.join(FIELDS)})", unknown[0])
    if "url_env" not in table:
        raise ValidationError("is required (the variable that holds the webhook URL)", "url_env")
    fmt = table.get("format", "json")
    if fmt not in FORMATS:
        raise ValidationError(f"must be one of {', '.join(FORMATS)}", "format")
    events: tuple[str, ...] = EVENT_TYPES
    if "events" in table:
        items = _strings(table["events"], "events")
        for i, item in enumerate(items):
            if item not in EVENT_TYPES:
                raise ValidationError(
                    f"unknown event {item!r} (known: {', '.join(EVENT_TYPES)})", f"events[{i}]"
                )
        events = tuple(dict.fromkeys(str(i) for i in items))
    flags: tuple[str, ...] = ("*",)
    if "flags" in table:
        items = _strings(table["flags"], "flags")
        flags = tuple(_glob(item, f"flags[{i}]") for i, item in enumerate(items))
    secret = table.get("secret_env")
    return Destination(
        name=name,
        url_env=_env(table["url_env"], "url_env"),
        format=str(fmt),
        events=events,
        flags=flags,
        secret_env=None if secret is None else _env(secret, "secret_env"),
        created_at=created_at,
    )


def destination_from_stored(raw: Mapping[str, Any]) -> Destination:
    table = {k: raw[k] for k in FIELDS if raw.get(k) is not None}
    created = raw.get("created_at", 0)
    return parse_destination(raw.get("name"), table, created if isinstance(created, int) else 0)


def mask_url(url: str | None) -> str:
    """Scheme and host only: the path and query of a webhook URL are its secret."""
    if not url:
        return "-"
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
    except ValueError:
        return "(unparseable URL)"
    return f"{parts.scheme or '?'}://{host}/…"


def resolve(destination: Destination, environ: Mapping[str, str]) -> tuple[str, str | None]:
    """(URL, secret) from the environment; one clear line when a variable is missing."""
    url = environ.get(destination.url_env, "").strip()
    if not url:
        raise ValidationError(
            f"destination {destination.name!r}: environment variable "
            f"{destination.url_env} (url_env) is not set"
        )
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValidationError(
            f"destination {destination.name!r}: {destination.url_env} must hold an http:// or "
            "https:// URL"
        )
    secret = None
    if destination.secret_env is not None:
        secret = environ.get(destination.secret_env) or None
        if secret is None:
            raise ValidationError(
                f"destination {destination.name!r}: environment variable "
                f"{destination.secret_env} (secret_env) is not set"
            )
    return url, secret
