"""snapshot and restore: an exact round trip, and nothing written from a bad file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rollout.services.container import Services
from tests.cli.conftest import ACTOR, Cli, audit_count, keys, write
from tests.support import FakeClock

STAGES = [{"percent": 10, "bake": "1d", "min_samples": 5}, {"percent": 50}, {"percent": 100}]
GATES = [{"metric": "latency_ratio", "warn": 1.2, "critical": 1.5, "window": "90s"}]


def populate(services: Services) -> None:
    flags = services.flags
    flags.create("DRAFTY", actor="setup", description="d", allow=["qa"], deny=["x"])
    flags.create("ROLL", actor="setup", stages=STAGES, gates=GATES, auto_advance=True)
    flags.advance("ROLL", actor="setup")
    flags.set_percent("ROLL", "12.5", actor="setup")
    flags.record_status("ROLL", "hold", "latency_ratio 1.3 >= warn 1.2")
    flags.create("DEAD", actor="setup", stages=STAGES)
    flags.advance("DEAD", actor="setup")
    flags.kill("DEAD", reason="errors", actor="setup")


def without_versions(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in f.items() if k != "version"} for f in document["flags"]]


def test_snapshot_to_stdout_and_file(run: Cli, services: Services, tmp_path: Path) -> None:
    populate(services)
    document = json.loads(run.ok("snapshot").stdout)
    assert document["format"] == "rollout-snapshot"
    assert [f["key"] for f in document["flags"]] == ["DEAD", "DRAFTY", "ROLL"]
    out = tmp_path / "snap.json"
    assert run.ok("snapshot", "--out", str(out)).stdout.strip() == (
        f"wrote a snapshot of 3 flag(s) to {out}"
    )
    assert json.loads(out.read_text())["flags"] == document["flags"]
    assert out.stat().st_mode & 0o077 == 0  # allow/deny lists name users
    assert run.json("snapshot", "--out", str(out))["flags"] == 3


def test_round_trip_is_exact(
    run: Cli, services: Services, tmp_path: Path, clock: FakeClock
) -> None:
    populate(services)
    path = tmp_path / "snap.json"
    run.ok("snapshot", "--out", str(path))
    before = json.loads(path.read_text())
    versions = {f["key"]: f["version"] for f in before["flags"]}
    # The bad change: a flag deleted, one moved and reconfigured, one revived, one added.
    clock.advance(60)
    services.flags.delete("DRAFTY", actor="oops")
    services.flags.set_percent("ROLL", 100, actor="oops")
    services.flags.update("ROLL", {"description": "changed"}, actor="oops")
    services.flags.revive("DEAD", actor="oops")
    services.flags.create("NEW", actor="oops")
    out = run.ok("restore", str(path)).stdout.strip()
    assert out == (
        f"restored {path}: created 1 (DRAFTY), updated 2 (DEAD, ROLL), deleted 1 (NEW), unchanged 0"
    )
    after = json.loads(run.ok("snapshot").stdout)
    assert without_versions(after) == without_versions(before)  # every field back
    # Versions move on, never back (old ETags are stale): past each bad write, plus the restore.
    # DRAFTY's delete took a version too, so its re-creation is one beyond that.
    bad_writes = {"DRAFTY": 1, "ROLL": 2, "DEAD": 1}
    assert {f["key"]: f["version"] for f in after["flags"]} == {
        key: version + bad_writes[key] + 1 for key, version in versions.items()
    }
    entry = services.flags.audit("ROLL")[0]
    assert (entry["action"], entry["actor"], entry["reason"]) == (
        "restore",
        ACTOR,
        f"restore {path}",
    )
    assert run.json("restore", str(path)) == {
        "created": [],
        "updated": [],
        "deleted": [],
        "unchanged": ["DEAD", "DRAFTY", "ROLL"],
    }


def test_restore_only_one_flag(run: Cli, services: Services, tmp_path: Path) -> None:
    populate(services)
    path = tmp_path / "snap.json"
    run.ok("snapshot", "--out", str(path))
    services.flags.update("ROLL", {"description": "changed"}, actor="oops")
    services.flags.update("DRAFTY", {"description": "changed too"}, actor="oops")
    services.flags.create("NEW", actor="oops")
    result = run.json("restore", str(path), "--only", "ROLL")
    assert result["updated"] == ["ROLL"] and result["deleted"] == []
    assert services.flags.get("ROLL").description == ""
    assert services.flags.get("DRAFTY").description == "changed too"  # left alone
    assert "NEW" in keys(services)
    assert "not in the snapshot" in run.fails(2, "restore", str(path), "--only", "NEW")


def test_restore_refuses_bad_files_and_writes_nothing(
    run: Cli, services: Services, tmp_path: Path
) -> None:
    populate(services)
    path = tmp_path / "snap.json"
    run.ok("snapshot", "--out", str(path))
    document = json.loads(path.read_text())
    services.flags.create("NEW", actor="setup")
    count = audit_count(services)

    message = run.fails(2, "restore", write(tmp_path / "broken.json", '{"flags": [\n  {,\n'))
    assert "broken.json" in message and "invalid JSON at line 2" in message
    message = run.fails(2, "restore", write(tmp_path / "foreign.json", '{"hello": "world"}'))
    assert "foreign.json" in message and "not a rollout snapshot" in message
    document["flags"][2]["stages"][1]["percent"] = 12.345  # one bad flag among good ones
    message = run.fails(2, "restore", write(tmp_path / "bad.json", json.dumps(document)))
    assert "flags[2]" in message and "two decimals" in message
    assert "does not exist" in run.fails(2, "restore", str(tmp_path / "missing.json"))

    assert audit_count(services) == count and "NEW" in keys(services)


def test_restore_from_stdin(run: Cli, services: Services) -> None:
    populate(services)
    text = run.ok("snapshot").stdout
    services.flags.delete("ROLL", actor="oops")
    assert run.json("restore", "-", input=text)["created"] == ["ROLL"]


def test_snapshot_out_to_a_missing_directory_is_refused(run: Cli, tmp_path: Path) -> None:
    message = run.fails(1, "snapshot", "--out", str(tmp_path / "no" / "snap.json"))
    assert "cannot write" in message
