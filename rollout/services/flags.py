"""FlagService: the one writer. Every API call, CLI command and controller action lands here.

Each move reads the flag, computes the new value with a pure function from ``core``, and writes
it compare-and-set on the version together with its one audit entry. When another write lands
first, the move is re-read and retried (bounded): an operator's kill never fails because the
controller wrote a status a millisecond earlier.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from rollout.core import transitions
from rollout.core.bounds import Moments
from rollout.core.defaults import MAX_SALT, MAX_USER, WRITE_RETRY_BUDGET
from rollout.core.errors import (
    ConcurrentUpdate,
    FlagExists,
    FlagNotFound,
    MalformedFlag,
    PreconditionFailed,
    ValidationError,
)
from rollout.core.evaluation import Evaluation, evaluate
from rollout.core.model import Flag, Status, new_flag
from rollout.core.rules import parse_context
from rollout.core.schema import parse_config, validate_actor, validate_key, validate_text
from rollout.core.units import parse_percent, to_ms
from rollout.storage.flags import AuditEntry, FlagStore

Clock = Callable[[], float]
Result = TypeVar("Result")
MAX_ATTEMPTS = 50


def _validate_actor_and_reason(actor: str, reason: str | None) -> None:
    """Who and why end up in the audit log: refuse what it could not store or show."""
    validate_actor(actor)
    if reason is not None:
        validate_text(reason, "reason")


def _backoff(attempt: int) -> None:
    # Jittered, so writers that collided do not collide again in lockstep.
    # Capped before it grows: a kill may retry for as long as it takes.
    time.sleep(random.uniform(0, min(0.0005 * 2 ** min(attempt, 6), 0.02)))


def _retrying(
    key: str,
    attempt: Callable[[], Result],
    also: tuple[type[Exception], ...] = (),
    attempts: int | None = MAX_ATTEMPTS,
) -> Result:
    """Run one read-compute-write ``attempt`` until no other write lands first.

    Each lost race means another write landed, so the flag set as a whole makes progress; an
    operator's move gives up only after ``attempts`` tries *and* ``WRITE_RETRY_BUDGET`` seconds
    (20 writers on one flag lose 50 races in a row now and then). ``attempts=None`` retries until
    it lands: a kill must never lose to other writers. ``attempt`` reads afresh each time, so a
    retried move is judged on the flag as it now is.
    """
    retry_on: tuple[type[Exception], ...] = (ConcurrentUpdate, *also)
    # A budget for giving up, not a timer anything waits for: the real clock is right here.
    deadline = time.monotonic() + WRITE_RETRY_BUDGET
    for tries in itertools.count():
        try:
            return attempt()
        except retry_on:
            if attempts is not None and tries + 1 >= attempts and time.monotonic() >= deadline:
                break
            _backoff(tries)
    raise ConcurrentUpdate(f"flag {key!r} kept changing; gave up after {tries + 1} tries")


class GateReader(Protocol):
    """What a move needs to know of the evidence (``services.gates.GateService``)."""

    def failing(self, flag: Flag) -> Sequence[str]: ...

    def control_baseline(self, flag: Flag) -> tuple[float | None, dict[str, Moments]]: ...


class FlagService:
    def replication_pending(self) -> bool:
        """True (once) when a write made by this thread since the last call stood before the
        replicas it waits for confirmed it (``ROLLOUT_WRITE_REPLICAS_TIMEOUT`` passed)."""
        return self._store.take_unreplicated()

    def __init__(self, store: FlagStore, clock: Clock, gates: GateReader) -> None:
        self._store = store
        self.clock = clock
        self.gates = gates
        # Told of every successful write (key, new value or None) and every status word:
        # in-process read caches.
        self.listeners: list[Callable[[str, Flag | None], None]] = []
        self.status_listeners: list[Callable[[str, Status], None]] = []

    def _written(self, key: str, flag: Flag | None) -> None:
        for listener in self.listeners:
            listener(key, flag)

    def now(self) -> int:
        return to_ms(self.clock())

    # -- reads ---------------------------------------------------------------------------

    def get(self, key: str) -> Flag:
        return self._store.get(validate_key(key))

    def list_flags(self) -> list[Flag]:
        flags, _problems = self._store.load_all()
        return [flags[k] for k in sorted(flags)]

    def list_with_problems(self) -> tuple[list[Flag], list[str]]:
        flags, problems = self._store.load_all()
        return [flags[k] for k in sorted(flags)], [str(p) for p in problems]

    def keys(self) -> list[str]:
        """Every stored key, a malformed value's too: apply can prune it, restore replace it."""
        return self._store.keys_list()

    def load_all(self) -> tuple[dict[str, Flag], list[MalformedFlag]]:
        """Every readable flag by key, and the malformed ones as problems rather than raised."""
        return self._store.load_all()

    def evaluate(
        self, key: str, user: str, attributes: Mapping[str, object] | None = None
    ) -> Evaluation:
        """What ``key`` answers ``user`` with these context attributes (refused naming
        ``attr.NAME`` when one is not an attribute name, or its value no scalar)."""
        if not validate_text(user, "user", MAX_USER):
            raise ValidationError("must not be empty", "user")
        context = parse_context(attributes)
        return evaluate(self.get(key), user, attributes=context)

    def audit(self, key: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        if key is not None:
            validate_key(key)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise ValidationError("must be a whole number from 1 to 10000", "limit")
        return self._store.audit(key, limit)

    # -- the write path ------------------------------------------------------------------

    def _move(
        self,
        key: str,
        change: Callable[[Flag, int], Flag],
        *,
        actor: str,
        action: str,
        reason: str | None,
        if_match: int | None = None,
        now: int | None = None,
        attempts: int | None = MAX_ATTEMPTS,
        token: int = 0,
    ) -> Flag:
        """Read, apply ``change``, write CAS with one audit entry; retried on conflict.

        ``if_match``: only from that version, and a conflict is the caller's (412), not retried.
        ``now``: the instant of the move, when the caller judged the flag at that instant.
        ``attempts=None`` retries until the write lands (a kill must never lose to other writers).
        """
        validate_key(key)
        _validate_actor_and_reason(actor, reason)

        def attempt() -> Flag:
            current = self._store.get(key)
            if if_match is not None and current.version != if_match:
                raise PreconditionFailed(
                    f"flag {key!r} is at version {current.version}, not {if_match}"
                )
            at = self.now() if now is None else now
            new = change(current, at)
            if new.same_content(current):
                return current  # nothing to change: no write, no audit entry
            try:
                stored = self._store.write(
                    new.with_changes(updated_at=at),
                    key=key,
                    expected_version=current.version,
                    audit=AuditEntry(actor=actor, action=action, reason=reason, at=at),
                    before=current,
                    token=token,
                )
            except ConcurrentUpdate:
                if if_match is not None:
                    raise PreconditionFailed(f"flag {key!r} changed while writing") from None
                raise
            assert stored is not None  # only a delete stores nothing
            self._written(key, stored)
            return stored

        return _retrying(key, attempt, attempts=attempts)

    def _keep_baseline(self, before: Flag, after: Flag) -> Flag:
        if not transitions.takes_baseline(before, after):
            return after
        p95, values = self.gates.control_baseline(before)
        return after.with_changes(baseline_p95_ms=p95, baseline_values=values)

    # -- create, update, delete ----------------------------------------------------------

    def create(self, key: str, *, actor: str, reason: str | None = None, **config: Any) -> Flag:
        """A draft at 0%; ``config`` takes the TOML/JSON fields (plus ``salt``)."""
        validate_key(key)
        _validate_actor_and_reason(actor, reason)
        salt = config.pop("salt", None)
        if salt is not None and not validate_text(salt, "salt", MAX_SALT):
            raise ValidationError("must not be empty", "salt")
        values = parse_config(config)
        now = self.now()
        flag = new_flag(key, now, salt=salt, **values)
        stored = self._store.write(
            flag,
            key=key,
            expected_version=0,
            audit=AuditEntry(actor=actor, action="create", reason=reason, at=now),
            before=None,
        )
        assert stored is not None
        self._written(key, stored)
        return stored

    def update(
        self,
        key: str,
        changes: Mapping[str, Any],
        *,
        actor: str,
        reason: str | None = None,
        if_match: int | None = None,
    ) -> Flag:
        """Change configuration fields only: never state, percent, stage or salt."""
        values = parse_config(changes)

        def change(flag: Flag, now: int) -> Flag:
            others = {k: v for k, v in values.items() if k != "stages"}
            replanned = transitions.replan(flag, values["stages"]) if "stages" in values else flag
            return replanned.with_changes(**others)

        return self._move(
            key, change, actor=actor, action="update", reason=reason, if_match=if_match
        )

    def put(self, target: Flag, *, actor: str, action: str, reason: str | None = None) -> str:
        """Make the stored flag exactly ``target`` (restore): 'created', 'updated', 'unchanged'.

        Overwrites a malformed stored value too: restoring is how an operator repairs one.
        """
        key = validate_key(target.key)
        _validate_actor_and_reason(actor, reason)

        def attempt() -> str:
            version = self._store.version(key)
            try:
                current: Flag | None = self._store.get(key) if version else None
            except (FlagNotFound, MalformedFlag):
                current = None
            if current is not None and current == target.with_changes(version=current.version):
                return "unchanged"
            stored = self._store.write(
                target,
                key=key,
                expected_version=version,
                audit=AuditEntry(actor=actor, action=action, reason=reason, at=self.now()),
                before=current,
                write_status=True,
            )
            self._written(key, stored)
            return "updated" if version else "created"

        # Created or deleted meanwhile: the next attempt sees which, and writes over it.
        return _retrying(key, attempt, also=(FlagExists, FlagNotFound))

    def delete(self, key: str, *, actor: str, reason: str | None = None) -> None:
        """Deletes a malformed stored value too, so an operator can always clear one."""
        validate_key(key)
        _validate_actor_and_reason(actor, reason)

        def attempt() -> None:
            version = self._store.version(key)
            if not version:
                raise FlagNotFound(key)
            try:
                current: Flag | None = self._store.get(key)
            except MalformedFlag:
                current = None
            self._store.write(
                None,
                key=key,
                expected_version=version,
                audit=AuditEntry(actor=actor, action="delete", reason=reason, at=self.now()),
                before=current,
            )
            self._written(key, None)

        _retrying(key, attempt)

    # -- moves ---------------------------------------------------------------------------

    def set_percent(
        self, key: str, percent: object, *, actor: str, reason: str | None = None
    ) -> Flag:
        bp = parse_percent(percent)

        def change(flag: Flag, now: int) -> Flag:
            return self._keep_baseline(flag, transitions.set_percent(flag, bp, now))

        return self._move(key, change, actor=actor, action="set", reason=reason)

    def advance(
        self,
        key: str,
        *,
        actor: str,
        reason: str | None = None,
        force: bool = False,
        if_version: int | None = None,
        now: int | None = None,
        token: int = 0,
    ) -> Flag:
        """``if_version``: only from that version (the controller acts on what it read);
        ``now``: the instant it judged it at, so the new stage starts from that instant;
        ``token``: the controller's fencing token (``LeadershipLost`` once a newer one acted)."""

        def change(flag: Flag, now: int) -> Flag:
            failing = self.gates.failing(flag) if not force else ()
            moved = transitions.advance(flag, now, failing_gates=failing, force=force)
            return self._keep_baseline(flag, moved)

        return self._move(
            key,
            change,
            actor=actor,
            action="advance",
            reason=reason,
            if_match=if_version,
            now=now,
            token=token,
        )

    def rollback(self, key: str, *, actor: str, reason: str | None = None) -> Flag:
        return self._move(key, transitions.rollback, actor=actor, action="rollback", reason=reason)

    def pause(self, key: str, *, actor: str, reason: str | None = None) -> Flag:
        return self._move(key, transitions.pause, actor=actor, action="pause", reason=reason)

    def resume(self, key: str, *, actor: str, reason: str | None = None) -> Flag:
        return self._move(key, transitions.resume, actor=actor, action="resume", reason=reason)

    def kill(
        self,
        key: str,
        *,
        reason: str,
        actor: str,
        if_version: int | None = None,
        now: int | None = None,
        token: int = 0,
    ) -> Flag:
        """Off for everyone; retried until it lands (``if_version``: only from that version;
        ``now``: the instant the caller judged it at; ``token``: a controller's fence)."""
        reason = transitions.kill_reason(reason)
        return self._move(
            key,
            lambda f, now: transitions.kill(f, reason, actor, now),
            actor=actor,
            action="kill",
            reason=reason,
            if_match=if_version,
            now=now,
            attempts=None,
            token=token,
        )

    def kill_all(self, *, reason: str, actor: str) -> list[Flag]:
        """Kill every rolling or paused flag; a flag deleted meanwhile is skipped."""
        reason = transitions.kill_reason(reason)
        validate_actor(actor)
        killed = []
        for flag in self.list_flags():
            if transitions.rolling_out(flag):
                try:
                    killed.append(self.kill(flag.key, reason=reason, actor=actor))
                except FlagNotFound:
                    continue
        return killed

    def revive(self, key: str, *, actor: str, reason: str | None = None) -> Flag:
        return self._move(key, transitions.revive, actor=actor, action="revive", reason=reason)

    def record_status(
        self, key: str, decision: str, why: str, *, now: int | None = None, token: int = 0
    ) -> Status:
        """The controller's word for operators; not a change to the flag, so not audited."""
        status = Status(decision=decision, why=why, at=self.now() if now is None else now)
        if self._store.set_status(validate_key(key), status, token=token):
            for listener in self.status_listeners:
                listener(key, status)
        return status
