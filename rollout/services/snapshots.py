"""Backup and restore of the whole flag set: the procedure operators run around a risky change.

A snapshot is every flag in its external form. Restore validates the whole document before it
writes anything, then makes the flag set equal to it, flag by flag through the same audited
compare-and-set path as every other write, so SDKs follow and old ETags stop matching. The
controller's status word is restored with each flag and published on its own channel, so
every API worker's cache shows the restored word at once, not at its next resync.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rollout.core.destinations import Destination, destination_from_stored
from rollout.core.errors import FlagNotFound, MalformedFlag, SnapshotNotFound, ValidationError
from rollout.core.model import Flag
from rollout.core.schema import flag_from_dict, flag_to_dict, validate_key
from rollout.core.triggers import Trigger, trigger_from_dict, trigger_to_stored
from rollout.core.units import render_instant
from rollout.services.flags import FlagService
from rollout.services.notify import NotifyService
from rollout.services.summaries import SummaryService
from rollout.services.triggers import TriggerService
from rollout.storage.snapshots import SnapshotStore

SNAPSHOT_FORMAT = "rollout-snapshot"
SNAPSHOT_SCHEMA = 1


@dataclass
class RestoreResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[str]]:
        return {
            "created": self.created,
            "updated": self.updated,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
        }


def parse_summaries(document: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]] | None:
    """The stage summaries of a snapshot by flag key; None for a snapshot without them."""
    raw = document.get("summaries")
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ValidationError("must be an object of flag key -> list of summaries", "summaries")
    found: dict[str, list[dict[str, Any]]] = {}
    for key, items in raw.items():
        validate_key(key, f"summaries.{key}")
        if not isinstance(items, list):
            raise ValidationError("must be a list", f"summaries.{key}")
        for i, item in enumerate(items):
            epoch = item.get("epoch") if isinstance(item, Mapping) else None
            if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
                raise ValidationError("must be a summary with its epoch", f"summaries.{key}[{i}]")
        found[key] = [dict(item) for item in items]
    return found


def parse_snapshot(document: object) -> dict[str, Flag]:
    """Every flag of a snapshot document, or a ValidationError naming what is wrong."""
    if not isinstance(document, Mapping):
        raise ValidationError("a snapshot is a JSON object", "snapshot")
    if document.get("format") != SNAPSHOT_FORMAT:
        raise ValidationError(
            f"not a rollout snapshot (format must be {SNAPSHOT_FORMAT!r})", "format"
        )
    if document.get("schema") != SNAPSHOT_SCHEMA:
        raise ValidationError(f"unsupported snapshot schema {document.get('schema')!r}", "schema")
    raw_flags = document.get("flags")
    if not isinstance(raw_flags, list):
        raise ValidationError("must be a list", "flags")
    flags: dict[str, Flag] = {}
    for i, raw in enumerate(raw_flags):
        try:
            flag = flag_from_dict(raw)
        except ValidationError as error:
            raise ValidationError(str(error), f"flags[{i}]") from None
        if flag.key in flags:
            raise ValidationError(f"flag {flag.key!r} appears twice", f"flags[{i}].key")
        flags[flag.key] = flag
    return flags


def parse_triggers(document: Mapping[str, Any], flags: Mapping[str, Flag]) -> list[Trigger] | None:
    """The snapshot's triggers (secret hashes only); None for a snapshot taken before them."""
    raw = document.get("triggers")
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise ValidationError("must be a list", "triggers")
    out: list[Trigger] = []
    for i, item in enumerate(raw):
        try:
            trigger = trigger_from_dict(item)
        except ValidationError as error:
            raise ValidationError(str(error), f"triggers[{i}]") from None
        if trigger.flag not in flags:
            raise ValidationError(f"flag {trigger.flag!r} is not in the snapshot", f"triggers[{i}]")
        out.append(trigger)
    return out


def parse_destinations(document: Mapping[str, Any]) -> list[Destination] | None:
    """The snapshot's notification destinations (no URL, no secret); None when absent."""
    raw = document.get("notify")
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise ValidationError("must be a list", "notify")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise ValidationError("must be an object", f"notify[{i}]")
        try:
            out.append(destination_from_stored(item))
        except ValidationError as error:
            raise ValidationError(str(error), f"notify[{i}]") from None
    return out


class SnapshotService:
    def __init__(
        self,
        flags: FlagService,
        saved: SnapshotStore,
        summaries: SummaryService | None = None,
        triggers: TriggerService | None = None,
        notify: NotifyService | None = None,
    ) -> None:
        self.flags = flags
        self._saved = saved
        self.summaries = summaries
        self.triggers = triggers
        self.notify = notify

    def take(self) -> dict[str, Any]:
        """Every flag, or a refusal: a backup silently missing a damaged flag would let a
        later full restore delete it."""
        flags, problems = self.flags.load_all()
        if problems:
            first = problems[0]
            raise MalformedFlag(
                first.key,
                f"{first.detail}; repair it (restore --only KEY, or delete it) before a snapshot",
            )
        document: dict[str, Any] = {
            "format": SNAPSHOT_FORMAT,
            "schema": SNAPSHOT_SCHEMA,
            "taken_at": render_instant(self.flags.now()),
            "flags": [flag_to_dict(flags[key]) for key in sorted(flags)],
        }
        if self.summaries is not None:
            self.summaries.drain()  # summaries of the moves just made belong in it
            document["summaries"] = self.summaries.of_flags(sorted(flags))
        if self.triggers is not None:
            document["triggers"] = [
                trigger_to_stored(t) for t in self.triggers.list() if t.flag in flags
            ]
        if self.notify is not None:
            document["notify"] = [d.to_stored() for d in self.notify.destinations()]
        return document

    def restore(
        self,
        document: object,
        *,
        actor: str,
        reason: str | None = None,
        only: str | None = None,
    ) -> RestoreResult:
        wanted = parse_snapshot(document)  # validate everything before the first write
        assert isinstance(document, Mapping)  # parse_snapshot refuses anything else
        summaries = parse_summaries(document)
        triggers = parse_triggers(document, wanted)
        destinations = parse_destinations(document)
        if only is not None:
            validate_key(only, "only")
            if only not in wanted:
                raise ValidationError(f"flag {only!r} is not in the snapshot", "only")
            wanted = {only: wanted[only]}
            present: list[str] = []  # --only never deletes
        else:
            present = self.flags.keys()
        result = RestoreResult()
        for key in present:
            if key not in wanted:
                try:
                    self.flags.delete(key, actor=actor, reason=reason or "restore")
                    result.deleted.append(key)
                except FlagNotFound:
                    pass
        for key, target in sorted(wanted.items()):
            outcome = self.flags.put(target, actor=actor, action="restore", reason=reason)
            getattr(result, outcome).append(key)
        if summaries is not None and self.summaries is not None:
            for key in sorted(wanted):
                self.summaries.replace(key, summaries.get(key, []))
        if triggers is not None and only is None and self.triggers is not None:
            self.triggers.replace_all(triggers, actor=actor)
        if destinations is not None and only is None and self.notify is not None:
            keep = {d.name for d in destinations}
            for gone in self.notify.destinations():
                if gone.name not in keep:
                    self.notify.delete(gone.name)
            for destination in destinations:
                self.notify.save(destination)
        return result

    # -- snapshots kept in Redis (the API's form) ---------------------------------------

    def save(self) -> tuple[str, dict[str, Any]]:
        document = self.take()
        snapshot_id = (
            f"{document['taken_at'].replace(':', '').replace('.', '')}-{secrets.token_hex(3)}"
        )
        self._saved.save(snapshot_id, document, self.flags.now())
        return snapshot_id, document

    def list_saved(self, limit: int = 100) -> list[dict[str, Any]]:
        return [
            {"id": snapshot_id, "taken_at": render_instant(at)}
            for snapshot_id, at in self._saved.newest(limit)
        ]

    def get_saved(self, snapshot_id: str) -> dict[str, Any]:
        document = self._saved.get(snapshot_id)
        if document is None:
            raise SnapshotNotFound(snapshot_id)
        return document

    def restore_saved(
        self, snapshot_id: str, *, actor: str, reason: str | None = None, only: str | None = None
    ) -> RestoreResult:
        return self.restore(self.get_saved(snapshot_id), actor=actor, reason=reason, only=only)
