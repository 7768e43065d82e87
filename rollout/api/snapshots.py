"""Snapshots kept in Redis: back up every flag before a risky change, restore when it goes bad."""

from __future__ import annotations

from flask import Response

from rollout.api.auth import protected_blueprint
from rollout.api.http import actor, json_body, render, services
from rollout.api.models import (
    RestoreBody,
    RestoreOut,
    SnapshotCreated,
    SnapshotDocument,
    SnapshotList,
    WriteBody,
)
from rollout.api.spec import WRITE_ERRORS, documented, responses

bp = protected_blueprint("snapshots", __name__)
TAGS = ["snapshots"]


@bp.get("/snapshots")
@documented(tags=TAGS, resp=responses(SnapshotList))
def list_snapshots() -> Response:
    """Saved snapshots, newest first."""
    return render({"snapshots": services().snapshots.list_saved()})


@bp.post("/snapshots")
@documented(
    tags=TAGS, json=WriteBody, resp=responses(SnapshotCreated, status=201, errors=WRITE_ERRORS)
)
def create_snapshot() -> Response:
    """Save every flag as it is now (a snapshot changes no flag, so nothing is audited)."""
    json_body(WriteBody)
    snapshot_id, document = services().snapshots.save()
    response = render({"id": snapshot_id, "snapshot": document}, 201)
    response.headers["Location"] = f"/api/v1/snapshots/{snapshot_id}"
    return response


@bp.get("/snapshots/<snapshot_id>")
@documented(tags=TAGS, resp=responses(SnapshotDocument))
def get_snapshot(snapshot_id: str) -> Response:
    """One saved snapshot: every flag as it was."""
    return render(services().snapshots.get_saved(snapshot_id))


@bp.post("/snapshots/<snapshot_id>/restore")
@documented(tags=TAGS, json=RestoreBody, resp=responses(RestoreOut, errors=WRITE_ERRORS))
def restore_snapshot(snapshot_id: str) -> Response:
    """Make the flag set equal to the snapshot, or restore one flag with {"only": KEY}."""
    body = json_body(RestoreBody)
    result = services().snapshots.restore_saved(
        snapshot_id, actor=actor(), reason=body.get("reason"), only=body.get("only")
    )
    return render(result.to_dict())
