"""The error hierarchy and the one table that maps each error to a code and an HTTP status.

Adapters never invent codes: the API renders ``ERROR_TABLE`` entries, the CLI maps the same
classes to exit codes (usage errors 2, refusals 1).
"""

from __future__ import annotations


class RolloutError(Exception):
    """Root of every error this project raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ValidationError(RolloutError):
    """Input that does not fit the schema; ``field`` names where (``stages[1].percent``)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class MalformedRequest(ValidationError):
    """A body or file that cannot be parsed at all (bad JSON or TOML)."""


class InvalidContext(ValidationError):
    """An OpenFeature evaluation context that cannot be used (OFREP's INVALID_CONTEXT)."""


class TargetingKeyMissing(RolloutError):
    """A flag that splits users by percent, asked without a targeting key (OFREP)."""


class PayloadTooLarge(RolloutError):
    """A request body over the size limit."""


class FlagNotFound(RolloutError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"flag {key!r} does not exist")


class FlagExists(RolloutError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"flag {key!r} already exists")


class InvalidTransition(RolloutError):
    """A move that the lifecycle does not allow from the flag's current state."""


class GateFailing(InvalidTransition):
    """An operator's advance refused because a gate reads ``fail`` (use force to override)."""


class ConcurrentUpdate(RolloutError):
    """The flag changed between read and write; services retry, callers rarely see it."""


class LeadershipLost(RolloutError):
    """A controller write carried a leader token older than one the flag has seen (fencing)."""


class PreconditionFailed(RolloutError):
    """An ``If-Match`` version that is no longer the flag's version."""


class MalformedFlag(RolloutError):
    """A stored flag value that cannot be decoded (hand-edited, wrong schema)."""

    def __init__(self, key: str, detail: str) -> None:
        self.key = key
        self.detail = detail
        super().__init__(f"stored flag {key!r} is malformed: {detail}")


class SnapshotNotFound(RolloutError):
    def __init__(self, snapshot_id: str) -> None:
        self.snapshot_id = snapshot_id
        super().__init__(f"snapshot {snapshot_id!r} does not exist")


class TriggerNotFound(RolloutError):
    """A trigger URL that names no trigger: a wrong id, a wrong secret and a deleted trigger
    all read the same, so a caller cannot learn which ids exist."""

    def __init__(self) -> None:
        super().__init__("no such trigger")


class RateLimited(RolloutError):
    """Too many requests to one trigger; ``retry_after`` in whole seconds."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class DestinationNotFound(RolloutError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"notification destination {name!r} does not exist")


class AuthError(RolloutError):
    """Missing or unknown token."""


class Forbidden(RolloutError):
    """A valid token without the right to do this."""


class StorageError(RolloutError):
    """The storage backend failed (unreachable, timeout, protocol); wraps the driver's error."""

    def __init__(self, cause: BaseException | str) -> None:
        self.cause = cause
        text = cause if isinstance(cause, str) else f"{type(cause).__name__}: {cause}"
        super().__init__(f"storage unavailable: {text}")


class RouteNotFound(RolloutError):
    """An HTTP path that names no route (the API's 404 for a URL, not for a flag)."""


class MethodNotAllowed(RolloutError):
    """An HTTP method that the route does not take."""


class UnsupportedMediaType(RolloutError):
    """A request body in a format the route does not read (JSON routes take JSON only)."""


class InternalError(RolloutError):
    """A bug: an unexpected exception, reported without its details (they go to the log)."""


# error class -> (code, HTTP status). Lookup walks the MRO, so subclasses may be absent.
ERROR_TABLE: dict[type[RolloutError], tuple[str, int]] = {
    MalformedRequest: ("malformed_request", 400),
    InvalidContext: ("invalid_context", 400),
    TargetingKeyMissing: ("targeting_key_missing", 400),
    ValidationError: ("validation_error", 422),
    AuthError: ("unauthorized", 401),
    Forbidden: ("forbidden", 403),
    FlagNotFound: ("flag_not_found", 404),
    SnapshotNotFound: ("snapshot_not_found", 404),
    TriggerNotFound: ("trigger_not_found", 404),
    DestinationNotFound: ("destination_not_found", 404),
    RateLimited: ("rate_limited", 429),
    FlagExists: ("flag_exists", 409),
    GateFailing: ("gate_failing", 409),
    InvalidTransition: ("invalid_transition", 409),
    ConcurrentUpdate: ("concurrent_update", 409),
    LeadershipLost: ("leadership_lost", 409),
    MalformedFlag: ("malformed_flag", 409),
    PreconditionFailed: ("precondition_failed", 412),
    PayloadTooLarge: ("payload_too_large", 413),
    RouteNotFound: ("not_found", 404),
    MethodNotAllowed: ("method_not_allowed", 405),
    UnsupportedMediaType: ("unsupported_media_type", 415),
    InternalError: ("internal_error", 500),
    StorageError: ("storage_unavailable", 503),
    RolloutError: ("error", 400),
}

# Errors that are the caller's usage mistake (CLI exit 2); every other RolloutError is a refusal.
USAGE_ERRORS: tuple[type[RolloutError], ...] = (ValidationError, PayloadTooLarge)


def error_info(error: RolloutError) -> tuple[str, int]:
    """The (code, HTTP status) of an error, from the nearest class in the table."""
    for cls in type(error).__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]
    return ERROR_TABLE[RolloutError]
