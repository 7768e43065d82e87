"""FlagService: the one writer. Every API call, CLI command and controller action lands here.

Each move reads the flag, computes the new value with a pure function from ``core``, and writes
it compare-and-set on the version together with its one audit entry. When another write lands
first, the move is re-read and retried (bounded): an operator's kill never fails because the
controller wrote a status a millisecond earlier.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from rollout.core import transitions
from rollout.core.errors import (
    ConcurrentUpdate,
    FlagExists,
    FlagNotFound,
    MalformedFlag,
    PreconditionFailed,
    ValidationError,
)
from rollout.core.evaluation import Evaluation, evaluate
from rollout.core.model import Flag, State, Status, new_flag
from rollout.core.rules import parse_context
from rollout.core.schema import parse_config, validate_key, validate_text
from rollout.core.units import MAX_BP, parse_percent, to_ms
from rollout.storage.flags import AuditEntry, FlagStore

Clock = Callable[[], float]
MAX_ATTEMPTS = 50


MAX_ACTOR = 256


def _words(actor: str, reason: str | None) -> None:
    """Who and why end up in the audit log: refuse what it could not store or show."""
    validate_text(actor, "actor", MAX_ACTOR)
    if not actor.strip() or "\n" in actor or "\t" in actor:
        raise ValidationError("must be one line, not blank", "actor")
    if reason is not None:
        validate_text(reason, "reason")


def _backoff(attempt: int) -> None:
    # Jittered, so writers that collided do not collide again in lockstep.
    time.sleep(random.uniform(0, min(0.0005 * 2**attempt, 0.02)))


class GateReader(Protocol):
    """What a move needs to know of the evidence (``services.gates.GateService``)."""

    def failing(self, flag: Flag) -> Sequence[str]: ...

    def control_p95(self, flag: Flag) -> float | None: ...


class NoGates:
    """For a FlagService without metrics (tests of the lifecycle alone)."""

    def failing(self, flag: Flag) -> Sequence[str]:
        return ()

    def control_p95(self, flag: Flag) -> float | None:
        return None


class FlagService:
    def __init__(
        self,
        store: FlagStore,
        clock: Clock,
        gates: GateReader | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.gates: GateReader = gates or NoGates()
        # Told of every successful write (key, new value or None) and every status word:
        # in-process read caches.
        self.listeners: list[Callable[[str, Flag | None], None]] = []
        self.status_listeners: list[Callable[[str, Status], None]] = []

    def _written(self, key: str, flag: Flag | None) -> Flag | None:
        for listener in self.listeners:
            listener(key, flag)
        return flag

    def now(self) -> int:
        return to_ms(self.clock())

    # -- reads ---------------------------------------------------------------------------

    def get(self, key: str) -> Flag:
        return self.store.get(validate_key(key))

    def list_flags(self) -> list[Flag]:
        flags, _problems = self.store.load_all()
        return [flags[k] for k in sorted(flags)]

    def list_with_problems(self) -> tuple[list[Flag], list[str]]:
        flags, problems = self.store.load_all()
        return [flags[k] for k in sorted(flags)], [str(p) for p in problems]

    def keys(self) -> list[str]:
        """Every stored key, a malformed value's too: apply can prune it, restore replace it."""
        return self.store.keys_list()

    def load_all(self) -> tuple[dict[str, Flag], list[MalformedFlag]]:
        """Every readable flag by key, and the malformed ones as problems rather than raised."""
        return self.store.load_all()

    def evaluate(
        self, key: str, user: str, attributes: Mapping[str, object] | None = None
    ) -> Evaluation:
        """What ``key`` answers ``user`` with these context attributes (refused naming
        ``attr.NAME`` when one is not an attribute name, or its value no scalar)."""
        if not validate_text(user, "user", 1024):
            raise ValidationError("must not be empty", "user")
        context = parse_context(attributes)
        return evaluate(self.get(key), user, attributes=context)

    def audit(self, key: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        if key is not None:
            validate_key(key)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise ValidationError("must be a whole number from 1 to 10000", "limit")
        return self.store.audit(key, limit)

    # -- the write path ------------------------------------------------------------------

    def _mutate(
        self,
        key: str,
        change: Callable[[Flag, int], Flag | None],
        *,
        actor: str,
        action: str,
        reason: str | None,
        if_match: int | None = None,
        now: int | None = None,
    ) -> Flag | None:
        """Read, apply ``change``, write CAS; retry on conflict. None from change = delete.

        ``now``: the instant of the move, when the caller judged the flag at that instant.
        """
        validate_key(key)
        _words(actor, reason)
        for _attempt in range(MAX_ATTEMPTS):
            current = self.store.get(key)
            if if_match is not None and current.version != if_match:
                raise PreconditionFailed(
                    f"flag {key!r} is at version {current.version}, not {if_match}"
                )
            at = self.now() if now is None else now
            new = change(current, at)
            if new is not None and new.same_content(current):
                return current  # nothing to change: no write, no audit entry
            if new is not None:
                new = new.with_changes(updated_at=at)
            try:
                stored = self.store.write(
                    new,
                    key=key,
                    expected_version=current.version,
                    audit=AuditEntry(actor=actor, action=action, reason=reason, at=at),
                    before=current,
                )
                return self._written(key, stored)
            except ConcurrentUpdate:
                if if_match is not None:
                    raise PreconditionFailed(f"flag {key!r} changed while writing") from None
                _backoff(_attempt)
        raise ConcurrentUpdate(f"flag {key!r} kept changing; gave up after {MAX_ATTEMPTS} tries")

    def _move(
        self,
        key: str,
        change: Callable[[Flag, int], Flag],
        actor: str,
        action: str,
        reason: str | None,
    ) -> Flag:
        result = self._mutate(key, change, actor=actor, action=action, reason=reason)
        assert result is not None
        return result

    # -- create, update, delete ----------------------------------------------------------

    def create(self, key: str, *, actor: str, reason: str | None = None, **config: Any) -> Flag:
        """A draft at 0%; ``config`` takes the TOML/JSON fields (plus ``salt``)."""
        validate_key(key)
        _words(actor, reason)
        salt = config.pop("salt", None)
        if salt is not None and not validate_text(salt, "salt", 256):
            raise ValidationError("must not be empty", "salt")
        values = parse_config(config)
        now = self.now()
        flag = new_flag(key, now, salt=salt, **values)
        stored = self.store.write(
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

        result = self._mutate(
            key, change, actor=actor, action="update", reason=reason, if_match=if_match
        )
        assert result is not None
        return result

    def put(self, target: Flag, *, actor: str, action: str, reason: str | None = None) -> str:
        """Make the stored flag exactly ``target`` (restore): 'created', 'updated', 'unchanged'.

        Overwrites a malformed stored value too: restoring is how an operator repairs one.
        """
        key = validate_key(target.key)
        _words(actor, reason)
        for _attempt in range(MAX_ATTEMPTS):
            version = self.store.version(key)
            try:
                current: Flag | None = self.store.get(key) if version else None
            except (FlagNotFound, MalformedFlag):
                current = None
            if current is not None and current == target.with_changes(version=current.version):
                return "unchanged"
            try:
                stored = self.store.write(
                    target,
                    key=key,
                    expected_version=version,
                    audit=AuditEntry(actor=actor, action=action, reason=reason, at=self.now()),
                    before=current,
                    write_status=True,
                )
                self._written(key, stored)
            except (ConcurrentUpdate, FlagExists, FlagNotFound):
                _backoff(_attempt)
                continue
            return "updated" if version else "created"
        raise ConcurrentUpdate(f"flag {key!r} kept changing; gave up after {MAX_ATTEMPTS} tries")

    def delete(self, key: str, *, actor: str, reason: str | None = None) -> None:
        """Deletes a malformed stored value too, so an operator can always clear one."""
        validate_key(key)
        _words(actor, reason)
        for _attempt in range(MAX_ATTEMPTS):
            version = self.store.version(key)
            if not version:
                raise FlagNotFound(key)
            try:
                current: Flag | None = self.store.get(key)
            except MalformedFlag:
                current = None
            try:
                self.store.write(
                    None,
                    key=key,
                    expected_version=version,
                    audit=AuditEntry(actor=actor, action="delete", reason=reason, at=self.now()),
                    before=current,
                )
                self._written(key, None)
                return
            except ConcurrentUpdate:
                _backoff(_attempt)
                continue
        raise ConcurrentUpdate(f"flag {key!r} kept changing; gave up after {MAX_ATTEMPTS} tries")

    # -- moves ---------------------------------------------------------------------------

    def set_percent(
        self, key: str, percent: object, *, actor: str, reason: str | None = None
    ) -> Flag:
        bp = parse_percent(percent)

        def change(flag: Flag, now: int) -> Flag:
            moved = transitions.set_percent(flag, bp, now)
            if bp == MAX_BP and flag.percent_bp < MAX_BP and flag.state is not State.DRAFT:
                moved = moved.with_changes(baseline_p95_ms=self.gates.control_p95(flag))
            return moved

        return self._move(key, change, actor, "set", reason)

    def advance(
        self,
        key: str,
        *,
        actor: str,
        reason: str | None = None,
        force: bool = False,
        if_version: int | None = None,
        now: int | None = None,
    ) -> Flag:
        """``if_version``: only from that version (the controller acts on what it read);
        ``now``: the instant it judged it at, so the new stage starts from that instant."""

        def change(flag: Flag, now: int) -> Flag:
            failing = self.gates.failing(flag) if not force else ()
            moved = transitions.advance(flag, now, failing_gates=failing, force=force)
            if moved.percent_bp == MAX_BP and flag.percent_bp < MAX_BP:
                # No control is left at 100%: keep the control's latency as the baseline.
                moved = moved.with_changes(baseline_p95_ms=self.gates.control_p95(flag))
            return moved

        result = self._mutate(
            key, change, actor=actor, action="advance", reason=reason, if_match=if_version, now=now
        )
        assert result is not None
        return result

    def rollback(self, key: str, *, actor: str, reason: str | None = None) -> Flag:
        return self._move(key, transitions.rollback, actor, "rollback", reason)

    def pause(self, key: str, *, actor: str, reason: str | None = None) -> Flag:
        return self._move(key, transitions.pause, actor, "pause", reason)

    def resume(self, key: str, *, actor: str, reason: str | None = None) -> Flag:
        return self._move(key, transitions.resume, actor, "resume", reason)

    def complete(self, key: str, *, actor: str, reason: str | None = None) -> Flag:
        return self._move(key, transitions.complete, actor, "complete", reason)

    def kill(
        self,
        key: str,
        *,
        reason: str,
        actor: str,
        if_version: int | None = None,
        now: int | None = None,
    ) -> Flag:
        """Off for everyone; retried until it lands (``if_version``: only from that version;
        ``now``: the instant the caller judged it at)."""
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError("a kill needs a reason", "reason")
        validate_text(reason, "reason")  # it is stored in the flag, so it must read back
        result = self._mutate(
            key,
            lambda f, now: transitions.kill(f, reason, actor, now),
            actor=actor,
            action="kill",
            reason=reason,
            if_match=if_version,
            now=now,
        )
        assert result is not None
        return result

    def kill_all(self, *, reason: str, actor: str) -> list[Flag]:
        """Kill every rolling or paused flag; a flag deleted meanwhile is skipped."""
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError("a kill needs a reason", "reason")
        validate_text(reason, "reason")
        _words(actor, None)
        killed = []
        for flag in self.list_flags():
            if flag.state in (State.ROLLING, State.PAUSED):
                try:
                    killed.append(self.kill(flag.key, reason=reason, actor=actor))
                except FlagNotFound:
                    continue
        return killed

    def revive(self, key: str, *, actor: str, reason: str | None = None) -> Flag:
        return self._move(key, transitions.revive, actor, "revive", reason)

    def record_status(self, key: str, decision: str, why: str, *, now: int | None = None) -> Status:
        """The controller's word for operators; not a change to the flag, so not audited."""
        status = Status(decision=decision, why=why, at=self.now() if now is None else now)
        if self.store.set_status(validate_key(key), status):
            for listener in self.status_listeners:
                listener(key, status)
        return status
