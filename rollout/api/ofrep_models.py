"""OFREP's bodies for the OpenAPI document (api.ofrep), after the protocol's own schemas.

Documentation only: api.ofrep parses bodies itself (OFREP bodies are JSON whatever their
Content-Type, and its errors take OFREP's shapes), so these models state what it enforces.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from spectree import Response as DocResponse

MAX_TARGETING_KEY = 1024

Reason = Literal["DISABLED", "STATIC", "TARGETING_MATCH", "SPLIT"]
FailureCode = Literal["PARSE_ERROR", "TARGETING_KEY_MISSING", "INVALID_CONTEXT", "GENERAL"]
Metadata = dict[str, bool | int | float | str]


class Context(BaseModel):
    """The evaluation context: the targeting key (the user) and attributes for rules."""

    model_config = ConfigDict(extra="allow")

    targetingKey: str | None = Field(
        None,
        max_length=MAX_TARGETING_KEY,
        description="the user id; needed by a flag between 0% and 100% that reaches the bucket",
    )


class EvaluationRequest(BaseModel):
    """An empty body is a context without a targeting key."""

    model_config = ConfigDict(extra="allow")

    context: Context | None = None


class BulkHeaders(BaseModel):
    if_none_match: str | None = Field(
        None, alias="If-None-Match", description="the ETag of an earlier answer: 304 if same"
    )


class EvaluationSuccess(BaseModel):
    key: str
    value: bool
    variant: Literal["on", "off"]
    reason: Reason
    metadata: Metadata = Field(description="state, percent, version and (when set) stage")


class EvaluationFailure(BaseModel):
    key: str
    errorCode: FailureCode
    errorDetails: str


class FlagNotFound(BaseModel):
    key: str
    errorCode: Literal["FLAG_NOT_FOUND"]
    errorDetails: str


class BulkEvaluationSuccess(BaseModel):
    flags: list[EvaluationSuccess | EvaluationFailure]


class BulkEvaluationFailure(BaseModel):
    errorCode: Literal["PARSE_ERROR", "INVALID_CONTEXT", "GENERAL"]
    errorDetails: str


# 401, 403 and 413 answer OFREP's shapes too, with GENERAL; 503 before the first sync.
_OTHER_ERRORS = (401, 403, 413, 503)

FLAG_RESPONSES = DocResponse(
    HTTP_200=EvaluationSuccess,
    HTTP_400=EvaluationFailure,
    HTTP_404=FlagNotFound,
    **{f"HTTP_{code}": EvaluationFailure for code in _OTHER_ERRORS},
)
BULK_RESPONSES = DocResponse(
    "HTTP_304",
    HTTP_200=BulkEvaluationSuccess,
    HTTP_400=BulkEvaluationFailure,
    **{f"HTTP_{code}": BulkEvaluationFailure for code in _OTHER_ERRORS},
)
