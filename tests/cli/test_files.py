"""Files the CLI reads and writes (``cli/files.py``): exact numbers, hostile JSON, no symlinks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rollout.services.snapshots import SNAPSHOT_FORMAT
from tests.cli.conftest import Cli


def test_toml_and_json_files_keep_decimals_exact(run: Cli, tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text("[flags.F]\nstages = [{ percent = 12.50000000000000001 }]\n")
    assert "more than two decimals" in run.fails(2, "apply", str(plan))
    snap = tmp_path / "s.json"
    snap.write_text(
        '{"format": "%s", "schema": 1, "flags": [{"key": "F", "stages": '
        '[{"percent": 12.50000000000000001}]}]}'.replace("%s", SNAPSHOT_FORMAT)
    )
    assert "more than two decimals" in run.fails(2, "restore", str(snap))


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("[" * 100_000, "nested too deeply"),
        (
            '{"format": "FMT", "schema": 1, "flags": [{"key": "F", "version": BIG}]}'.replace(
                "FMT", SNAPSHOT_FORMAT
            ).replace("BIG", "9" * 5000),
            "invalid JSON",
        ),
    ],
    ids=["deep", "huge-int"],
)
def test_hostile_json_files_are_usage_errors(
    run: Cli, tmp_path: Path, content: str, words: str
) -> None:
    path = tmp_path / "s.json"
    path.write_text(content)
    assert words in run.fails(2, "restore", str(path))


def test_snapshot_refuses_to_replace_a_link(run: Cli, tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("keep")
    link = tmp_path / "link.json"
    os.symlink(real, link)
    assert "not a regular file" in run.fails(2, "snapshot", "--out", str(link))
    assert link.is_symlink() and real.read_text() == "keep"
