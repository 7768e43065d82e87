"""``[notify.NAME]`` destinations in the apply file: validated, diffed, stored without URLs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rollout.core.destinations import Destination, mask_url, parse_destination, resolve
from rollout.core.errors import ValidationError
from rollout.services.container import Services
from tests.cli.conftest import Cli, write

FILE = """
[flags.PROMPT_IMPROVER_ENABLED]
description = "x"

[notify.oncall]
url_env = "ONCALL_WEBHOOK"
format = "slack"
events = ["kill", "awaiting_approval"]
flags = ["PROMPT_*"]
secret_env = "ONCALL_SECRET"

[notify.audit]
url_env = "AUDIT_WEBHOOK"
"""


def test_apply_creates_diffs_and_is_idempotent(
    real_services: Services, real_redis: Any, tmp_path: Path
) -> None:
    run = Cli(real_services)
    path = write(tmp_path / "a.toml", FILE)
    out = run.ok("apply", path).stdout
    assert "+ create notify.oncall" in out and "+ create notify.audit" in out
    assert "url_env: 'ONCALL_WEBHOOK'" in out or "ONCALL_WEBHOOK" in out
    names = [d.name for d in real_services.notify.destinations()]
    assert names == ["audit", "oncall"]
    oncall = real_services.notify.get("oncall")
    assert oncall.events == ("kill", "awaiting_approval") and oncall.flags == ("PROMPT_*",)
    assert real_services.notify.get("audit").format == "json"
    assert "no changes" in run.ok("apply", path).stdout
    changed = write(tmp_path / "b.toml", FILE.replace('["kill", "awaiting_approval"]', '["kill"]'))
    diff = run.ok("apply", changed).stdout
    assert "~ update notify.oncall" in diff and '- "awaiting_approval"' in diff
    assert "notify: created 0, updated 1, deleted 0" in diff
    plan = json.loads(run.ok("apply", changed, "--json").stdout)
    assert plan["changed"] is False
    only_flags = write(tmp_path / "c.toml", FILE.split("[notify.oncall]")[0])
    assert "notify" not in run.ok("apply", only_flags).stdout  # kept without --prune
    assert "- delete notify.oncall" in run.ok("apply", only_flags, "--prune").stdout
    assert real_services.notify.destinations() == []
    stored = json.dumps([real_redis.hgetall(k) for k in real_redis.keys("*notify*")])
    assert "http" not in stored


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('url_env = "U"\nevents = ["kil"]', "notify.x.events[0]: unknown event 'kil'"),
        ('url_env = "U"\nflags = ["A[B"]', "notify.x.flags[0]: 'A[B' has unbalanced [ ]"),
        ('url_env = "U"\nflags = ["a b"]', "notify.x.flags[0]: must be a glob"),
        ('url_env = "U"\nformat = "xml"', "notify.x.format: must be one of json, slack"),
        ('url = "https://hooks.example/secret"', "notify.x.url: is not accepted here"),
        ('format = "json"', "notify.x.url_env: is required"),
    ],
)
def test_bad_destinations_are_one_clear_line(
    real_services: Services, tmp_path: Path, table: str, message: str
) -> None:
    path = write(tmp_path / "bad.toml", f"[flags]\n[notify.x]\n{table}\n")
    line = Cli(real_services).fails(2, "apply", path)
    assert message in line, line
    assert "hooks.example/secret" not in line
    assert real_services.notify.destinations() == []


def test_missing_variables_are_one_clear_line_and_urls_are_masked() -> None:
    d = parse_destination("d", {"url_env": "HOOK", "secret_env": "HOOK_SECRET"})
    with pytest.raises(ValidationError, match="HOOK \\(url_env\\) is not set"):
        resolve(d, {})
    with pytest.raises(ValidationError, match="HOOK_SECRET \\(secret_env\\) is not set"):
        resolve(d, {"HOOK": "https://hooks.slack.com/services/T0/B0/XYZ"})
    url, secret = resolve(
        d, {"HOOK": "https://hooks.slack.com/services/T0/B0/XYZ", "HOOK_SECRET": "s"}
    )
    assert secret == "s" and mask_url(url) == "https://hooks.slack.com/…"
    assert Destination("d", "U", flags=("PROMPT_*",)).wants("kill", "PROMPT_X")
    assert not Destination("d", "U", flags=("PROMPT_*",)).wants("kill", "OTHER")
    assert not Destination("d", "U", events=("kill",)).wants("hold", "X")


def test_snapshot_carries_destinations(real_services: Services, tmp_path: Path) -> None:
    Cli(real_services).ok("apply", write(tmp_path / "a.toml", FILE))
    document = real_services.snapshots.take()
    assert [d["name"] for d in document["notify"]] == ["audit", "oncall"]
    real_services.notify.delete("oncall")
    real_services.snapshots.restore(document, actor="op")
    assert [d.name for d in real_services.notify.destinations()] == ["audit", "oncall"]
