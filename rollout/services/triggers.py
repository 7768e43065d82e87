"""Inbound triggers: the alerting stack's kill switch for one flag (DESIGN §6).

``create`` returns the one and only copy of the secret, inside the hook path; only its SHA-256
is kept. ``fire`` is what ``POST /hooks/triggers/{id}/{secret}`` does: check the secret (in
constant time, a wrong one reading exactly like a missing trigger), then the rate limit, then
read the payload and kill through ``FlagService.kill`` with actor ``trigger:NAME``.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from rollout.core.defaults import TRIGGER_RATE, TRIGGER_SECRET_BYTES
from rollout.core.errors import FlagNotFound, RateLimited, TriggerNotFound, ValidationError
from rollout.core.model import Flag, State
from rollout.core.schema import validate_actor, validate_key
from rollout.core.triggers import (
    DEFAULT_NAME,
    ID_PATTERN,
    Trigger,
    hash_secret,
    hook_path,
    parse_body,
    payload_verdict,
    secret_matches,
    validate_name,
)
from rollout.services.flags import FlagService

# Compared against when the id names no trigger, so a miss costs what a hit costs.
_DUMMY_HASH = hash_secret("no trigger has this secret")


class TriggerStorage(Protocol):
    def save(self, trigger: Trigger) -> None: ...

    def get(self, trigger_id: str) -> Trigger | None: ...

    def all(self) -> list[Trigger]: ...

    def delete(self, trigger_id: str) -> bool: ...

    def hit(self, trigger_id: str, second: int) -> int: ...

    def audit(self, flag: Flag, *, actor: str, action: str, reason: str, at: int) -> None: ...


@dataclass(frozen=True)
class Created:
    trigger: Trigger
    url: str  # the hook path with the secret, prefixed with ROLLOUT_PUBLIC_URL when set

    def to_dict(self) -> dict[str, Any]:
        return {**self.trigger.to_dict(), "url": self.url}


@dataclass(frozen=True)
class Fired:
    flag: str
    killed: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"flag": self.flag, "killed": self.killed, "message": self.message}


class TriggerService:
    def __init__(
        self, flags: FlagService, store: TriggerStorage, public_url: str | None = None
    ) -> None:
        self.flags = flags
        self._store = store
        self.public_url = (public_url or "").rstrip("/")

    def create(self, key: str, *, actor: str, name: str = DEFAULT_NAME) -> Created:
        validate_actor(actor)
        validate_name(name)
        flag = self.flags.get(key)
        secret = secrets.token_urlsafe(TRIGGER_SECRET_BYTES)
        now = self.flags.now()
        trigger = Trigger(
            id=secrets.token_hex(8),
            flag=flag.key,
            name=name,
            secret_hash=hash_secret(secret),
            created_at=now,
            created_by=actor,
        )
        self._store.save(trigger)
        self._store.audit(
            flag,
            actor=actor,
            action="trigger_create",
            reason=f"trigger {name} ({trigger.id}) created",
            at=now,
        )
        return Created(trigger, self.public_url + hook_path(trigger.id, secret))

    def list(self, key: str | None = None) -> list[Trigger]:
        if key is not None:
            validate_key(key)
        return [t for t in self._store.all() if key is None or t.flag == key]

    def delete(self, trigger_id: str, *, actor: str, flag: str | None = None) -> Trigger:
        """Delete a trigger: its URL answers 404 from now on. Audited once on its flag.

        The one delete of ``rollout trigger delete ID`` and of
        ``DELETE /api/v1/flags/{key}/triggers/{id}``, which passes ``flag``: a trigger of
        another flag, or any id under a flag that does not exist, is then the same
        ``TriggerNotFound`` as an id that names no trigger, after the same one read (the
        flag's existence is not asked first, so no miss costs more than another).
        """
        validate_actor(actor)
        if flag is not None:
            validate_key(flag)
        if not isinstance(trigger_id, str) or not ID_PATTERN.fullmatch(trigger_id):
            raise ValidationError("must be 16 hex digits (see 'trigger list')", "id")
        trigger = self._store.get(trigger_id)
        if trigger is None or (flag is not None and trigger.flag != flag):
            raise TriggerNotFound()
        if not self._store.delete(trigger_id):  # deleted meanwhile by someone else
            raise TriggerNotFound()
        self._audit(
            trigger, actor, "trigger_delete", f"trigger {trigger.name} ({trigger.id}) deleted"
        )
        return trigger

    def _audit(self, trigger: Trigger, actor: str, action: str, reason: str) -> None:
        try:
            flag = self.flags.get(trigger.flag)
        except FlagNotFound:
            return  # the flag went first: there is no flag stream to note it on
        self._store.audit(flag, actor=actor, action=action, reason=reason, at=self.flags.now())

    def fire(self, trigger_id: str, secret: str, body: bytes) -> Fired:
        """Kill the trigger's flag if the payload asks for it; see the module docstring."""
        trigger = self._store.get(trigger_id) if ID_PATTERN.fullmatch(trigger_id) else None
        matched = secret_matches(secret, trigger.secret_hash if trigger else _DUMMY_HASH)
        if trigger is None or not matched:
            raise TriggerNotFound()
        now = self.flags.now()
        if self._store.hit(trigger.id, now // 1000) > TRIGGER_RATE:
            raise RateLimited(f"more than {TRIGGER_RATE} requests a second to this trigger")
        verdict = payload_verdict(trigger.name, parse_body(body))
        try:
            flag = self.flags.get(trigger.flag)
        except FlagNotFound:
            raise TriggerNotFound() from None
        if flag.created_at is not None and trigger.created_at < flag.created_at:
            # A trigger of an earlier flag of this name, deleted since: its alert was wired to
            # that flag, not to one created later under the same key.
            raise TriggerNotFound()
        if not verdict.kill:
            return Fired(flag.key, False, verdict.message)
        if flag.state is State.KILLED:
            return Fired(flag.key, False, "already killed: nothing done")
        try:
            self.flags.kill(flag.key, reason=verdict.message, actor=f"trigger:{trigger.name}")
        except FlagNotFound:
            raise TriggerNotFound() from None
        fired = replace(trigger, last_fired_at=now)
        if self._store.get(trigger.id) is not None:  # not deleted meanwhile
            self._store.save(fired)
        return Fired(flag.key, True, f"killed: {verdict.message}")

    # -- snapshots ---------------------------------------------------------------------

    def replace_all(self, wanted: Sequence[Trigger], *, actor: str) -> None:
        """Make the stored triggers exactly ``wanted`` (restore); audited like create/delete."""
        present = {t.id: t for t in self._store.all()}
        keep = {t.id for t in wanted}
        for trigger in present.values():
            if trigger.id not in keep:
                self._store.delete(trigger.id)
                self._audit(
                    trigger, actor, "trigger_delete", f"trigger {trigger.name} restored away"
                )
        for trigger in wanted:
            if present.get(trigger.id) != trigger:
                self._store.save(trigger)
                if trigger.id not in present:
                    self._audit(
                        trigger, actor, "trigger_create", f"trigger {trigger.name} restored"
                    )
