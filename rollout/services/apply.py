"""Declarative configuration: make the flags' plans equal to a file (``rollout apply``).

The file is declarative. A field absent from a flag's table means its default (``""``, ``false``,
an empty list), not "keep what is stored": otherwise deleting a line from the file would never
take effect and the file would stop describing the flags. Flags absent from the file are left
alone unless ``prune``.

Apply only touches configuration (DESIGN §6): never ``state``, ``percent``, ``stage`` or ``salt``,
which are moves. The whole file is validated, and every refusal the writes could meet is
detected while planning, before the first write, so a bad file never half-applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from rollout.core import transitions
from rollout.core.destinations import Destination, parse_destination
from rollout.core.errors import FlagNotFound, MalformedFlag, ValidationError
from rollout.core.model import SRM_HOLD, Flag
from rollout.core.schema import CONFIG_FIELDS, flag_to_dict, parse_config, validate_key
from rollout.services.flags import FlagService
from rollout.services.notify import NotifyService

Action = Literal["create", "update", "delete", "unchanged"]
ACTIONS: tuple[Action, ...] = ("create", "update", "delete", "unchanged")

# What an absent field means: the same defaults a new flag gets.
DEFAULTS: dict[str, Any] = {
    "description": "",
    "auto_advance": False,
    "stages": (),
    "gates": (),
    "allow": (),
    "deny": (),
    "srm": SRM_HOLD,
    "rules": (),
}


@dataclass(frozen=True)
class FieldChange:
    """One configuration field, old -> new, in the external form (DESIGN §2 names and units)."""

    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class PlanEntry:
    action: Action
    key: str
    changes: tuple[FieldChange, ...] = ()
    state: str | None = None  # the flag's current state, for context (None when created)
    # For create/update: the fields to write, in the input form FlagService accepts.
    values: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "key": self.key,
            "state": self.state,
            "changes": {c.field: {"old": c.old, "new": c.new} for c in self.changes},
        }


@dataclass(frozen=True)
class Plan:
    entries: tuple[PlanEntry, ...]
    applied: bool = False  # True once the changes were written (never for a dry run)
    destinations: tuple[PlanEntry, ...] = ()  # [notify.NAME] tables, keyed by name

    @property
    def changed(self) -> bool:
        return any(e.action != "unchanged" for e in (*self.entries, *self.destinations))

    def keys(self, action: Action) -> list[str]:
        return [e.key for e in self.entries if e.action == action]

    def summary(self) -> dict[str, int]:
        return {action: len(self.keys(action)) for action in ACTIONS}

    def to_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "applied": self.applied,
            "summary": self.summary(),
            "entries": [e.to_dict() for e in self.entries],
            "notify": [e.to_dict() for e in self.destinations],
        }


def _inner_message(error: ValidationError) -> str:
    """The message without its field prefix, so it can be re-prefixed with the flag's path."""
    prefix = f"{error.field}: " if error.field else ""
    return error.message.removeprefix(prefix)


def parse_document(document: object) -> dict[str, dict[str, Any]]:
    """Every flag's validated configuration, with absent fields at their defaults.

    Every flag is checked before any error is raised, so one run reports every broken table;
    each error names its flag and field (``flags.KEY.stages[1].percent``).
    """
    if not isinstance(document, Mapping):
        raise ValidationError("the file must be a table of flags")
    unknown = sorted(set(document) - {"flags", "notify"})
    if unknown:
        # A typo such as [flag.X] would otherwise apply nothing, or prune everything.
        raise ValidationError(f"unknown table {unknown[0]!r} (allowed: flags, notify)")
    tables = document.get("flags")
    if tables is None:
        raise ValidationError("is required (an empty [flags] table declares no flags)", "flags")
    if not isinstance(tables, Mapping):
        raise ValidationError("must be a table of flags", "flags")
    parsed: dict[str, dict[str, Any]] = {}
    errors: list[ValidationError] = []
    for key, table in tables.items():
        where = f"flags.{key}"
        try:
            validate_key(key, where)
            if not isinstance(table, Mapping):
                raise ValidationError("must be a table", where)
            try:
                config = parse_config(table)
            except ValidationError as error:
                path = f"{where}.{error.field}" if error.field else where
                raise ValidationError(_inner_message(error), path) from None
        except ValidationError as error:
            errors.append(error)
            continue
        parsed[key] = {**DEFAULTS, **config}
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ValidationError(f"{len(errors)} errors: " + "; ".join(e.message for e in errors))
    return parsed


def parse_notify(document: Mapping[str, Any]) -> dict[str, Destination]:
    """Every ``[notify.NAME]`` destination, validated like a flag (``notify.NAME.events[0]``)."""
    tables = document.get("notify", {})
    if not isinstance(tables, Mapping):
        raise ValidationError("must be a table of destinations", "notify")
    parsed: dict[str, Destination] = {}
    for name, table in tables.items():
        where = f"notify.{name}"
        try:
            parsed[name] = parse_destination(name, table)
        except ValidationError as error:
            path = f"{where}.{error.field}" if error.field and error.field != "name" else where
            raise ValidationError(_inner_message(error), path) from None
    return parsed


def _external(values: Mapping[str, Any]) -> dict[str, Any]:
    """Configuration values (model form) in the external form, via the one renderer."""
    rendered = flag_to_dict(Flag(key="x").with_changes(**values))
    return {name: rendered[name] for name in values}


class ApplyService:
    def __init__(self, flags: FlagService, notify: NotifyService | None = None) -> None:
        self.flags = flags
        self.notify = notify

    def plan(self, document: Mapping[str, Any], *, prune: bool = False) -> Plan:
        """What ``apply`` would do; reads only. Raises before anything could be written."""
        wanted = parse_document(document)
        destinations = self._plan_destinations(parse_notify(document), prune=prune)
        present = set(self.flags.keys())
        entries: list[PlanEntry] = []
        for key in sorted(wanted):
            entries.append(self._plan_one(key, wanted[key], exists=key in present))
        if prune:
            for key in sorted(present - set(wanted)):
                entries.append(PlanEntry("delete", key, state=self._state_of(key)))
        return Plan(tuple(entries), destinations=destinations)

    def _plan_destinations(
        self, wanted: Mapping[str, Destination], *, prune: bool
    ) -> tuple[PlanEntry, ...]:
        if self.notify is None:
            return ()
        present = {d.name: d for d in self.notify.destinations()}
        entries = []
        for name in sorted(wanted):
            new = wanted[name].config()
            if name not in present:
                changes = tuple(FieldChange(f, None, v) for f, v in new.items() if v is not None)
                entries.append(PlanEntry("create", name, changes, values={"d": wanted[name]}))
                continue
            old = present[name].config()
            changed = tuple(FieldChange(f, old[f], new[f]) for f in new if old[f] != new[f])
            action: Action = "update" if changed else "unchanged"
            entries.append(PlanEntry(action, name, changed, values={"d": wanted[name]}))
        if prune:
            entries += [PlanEntry("delete", name) for name in sorted(set(present) - set(wanted))]
        return tuple(entries)

    def _plan_one(self, key: str, config: dict[str, Any], *, exists: bool) -> PlanEntry:
        new = _external(config)
        if exists:
            try:
                current: Flag | None = self.flags.get(key)
            except FlagNotFound:  # deleted since we listed the keys
                current = None
        else:
            current = None
        if current is None:
            defaults = _external(DEFAULTS)
            changes = tuple(
                FieldChange(name, None, new[name])
                for name in CONFIG_FIELDS
                if new[name] != defaults[name]
            )
            return PlanEntry("create", key, changes, values=new)
        old = _external({name: getattr(current, name) for name in CONFIG_FIELDS})
        changed = [name for name in CONFIG_FIELDS if getattr(current, name) != config[name]]
        if not changed:
            return PlanEntry("unchanged", key, state=str(current.state))
        if "stages" in changed:
            # Refused here, before any write, if the flag could not stand in the new plan.
            transitions.replan(current, config["stages"])
        return PlanEntry(
            "update",
            key,
            tuple(FieldChange(name, old[name], new[name]) for name in changed),
            state=str(current.state),
            # Only the changed fields: FlagService re-checks the stage rule whenever stages
            # are among the changes, even when they are equal.
            values={name: new[name] for name in changed},
        )

    def _state_of(self, key: str) -> str | None:
        try:
            return str(self.flags.get(key).state)
        except (FlagNotFound, MalformedFlag):  # a malformed stored value can still be pruned
            return None

    def apply(
        self,
        document: Mapping[str, Any],
        *,
        actor: str,
        dry_run: bool = False,
        prune: bool = False,
        reason: str | None = None,
    ) -> Plan:
        plan = self.plan(document, prune=prune)
        if dry_run or not plan.changed:
            return plan
        for entry in plan.entries:
            if entry.action == "create":
                self.flags.create(entry.key, actor=actor, reason=reason, **entry.values)
            elif entry.action == "update":
                self.flags.update(entry.key, entry.values, actor=actor, reason=reason)
            elif entry.action == "delete":
                try:
                    self.flags.delete(entry.key, actor=actor, reason=reason)
                except FlagNotFound:
                    pass  # someone else deleted it meanwhile: the goal is reached
        for entry in plan.destinations:
            if self.notify is None:
                break
            if entry.action in ("create", "update"):
                self.notify.save(entry.values["d"])
            elif entry.action == "delete":
                self.notify.delete(entry.key)
        return Plan(plan.entries, applied=True, destinations=plan.destinations)
