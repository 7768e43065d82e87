"""Bearer-token authentication: admin tokens write and read, read tokens only read.

Tokens come from settings as {token: name}. The token's name is the audit actor. A token is
never logged, echoed in an error, or compared in a way whose timing depends on where it differs.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from flask import Blueprint, current_app, g, request

from rollout.core.errors import AuthError, Forbidden

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
EXTENSION = "rollout.auth"


@dataclass(frozen=True)
class Principal:
    name: str
    can_write: bool


def _digest(token: str) -> bytes:
    # Comparing fixed-length digests hides the length of the configured tokens as well.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class TokenChecker:
    def __init__(self, admin_tokens: Mapping[str, str], read_tokens: Mapping[str, str]) -> None:
        self._tokens = [(_digest(t), name, True) for t, name in admin_tokens.items()]
        self._tokens += [(_digest(t), name, False) for t, name in read_tokens.items()]

    def identify(self, authorization: str | None) -> Principal:
        """Who sent ``Authorization: Bearer TOKEN``; AuthError for anything else."""
        if not authorization:
            raise AuthError("missing credentials: send Authorization: Bearer TOKEN")
        token = bearer_token(authorization)
        if token is None:
            raise AuthError("use the Bearer scheme: Authorization: Bearer TOKEN")
        found = self.find(token)
        if found is None:
            raise AuthError("unknown token")
        return found

    def find(self, token: str) -> Principal | None:
        """Whose token this is (None: nobody's), in time that does not depend on the token."""
        presented = _digest(token)
        found: Principal | None = None
        # Every configured token is compared, whatever matched before: no early exit.
        for digest, name, admin in self._tokens:
            matched = hmac.compare_digest(digest, presented)
            if matched and (found is None or admin):
                found = Principal(name, admin)
        return found


def bearer_token(authorization: str) -> str | None:
    """TOKEN of ``Bearer TOKEN`` (any case of the scheme); None for any other form."""
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def authorize() -> None:
    """``before_request`` of every protected blueprint: 401/403 before any view runs."""
    checker: TokenChecker = current_app.extensions[EXTENSION]
    principal = checker.identify(request.headers.get("Authorization"))
    if request.method not in READ_METHODS and not principal.can_write:
        raise Forbidden(f"token {principal.name!r} may only read; this needs an admin token")
    g.rollout_actor = principal.name
    g.rollout_role = "admin" if principal.can_write else "read"


def protected_blueprint(name: str, import_name: str) -> Blueprint:
    """A blueprint under /api/v1 whose every route needs a token (writes an admin one)."""
    blueprint = Blueprint(name, import_name, url_prefix="/api/v1")
    blueprint.before_request(authorize)
    return blueprint
