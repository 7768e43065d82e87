"""CLI test harness: CliRunner with the ``services`` fixture injected through Click's ``obj``.

``services`` runs over fakeredis and a real redis-server, so every CLI test runs on both.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from click.testing import CliRunner, Result

from rollout.cli.main import cli
from rollout.services.container import Services
from rollout.storage.metrics import Batch

USER = "tester"
ACTOR = f"cli:{USER}"


def assert_one_line_error(result: Result, code: int) -> str:
    """Exit ``code`` with exactly one ``error: ...`` line on stderr, never a traceback."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


class Cli:
    def __init__(self, services: Services | Any) -> None:
        self.obj = services
        self.runner = CliRunner(env={"USER": USER, "LOGNAME": USER})

    def __call__(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None
    ) -> Result:
        return self.runner.invoke(
            cli, list(args), obj=self.obj, input=input, env=env, prog_name="rollout"
        )

    def ok(self, *args: str, input: str | None = None) -> Result:
        result = self(*args, input=input)
        assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
        assert result.exception is None or isinstance(result.exception, SystemExit)
        return result

    def json(self, *args: str, input: str | None = None) -> Any:
        return json.loads(self.ok(*args, "--json", input=input).stdout)

    def fails(self, code: int, *args: str, input: str | None = None) -> str:
        return assert_one_line_error(self(*args, input=input), code)


@pytest.fixture
def run(services: Services) -> Cli:
    return Cli(services)


def audit_count(services: Services, key: str | None = None) -> int:
    return len(services.flags.audit(key, 10_000))


def write(path: Any, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def keys(services: Services) -> Sequence[str]:
    return [f.key for f in services.flags.list_flags()]


def rolling_with_bad_evidence(services: Services) -> None:
    """F rolling at 10% with a failing error-rate gate: 25% treatment errors against 0.8%."""
    services.flags.create(
        "F",
        actor="t",
        gates=[{"metric": "error_rate", "warn": 0.05, "critical": 0.1, "min_samples": 100}],
        stages=[{"percent": 10, "bake": "1h"}],
    )
    flag = services.flags.advance("F", actor="t")
    batch = Batch()
    treatment = batch.tally("F", flag.stage_started_at or 0, "treatment")
    treatment.samples, treatment.errors = 400, 100
    control = batch.tally("F", flag.stage_started_at or 0, "control")
    control.samples, control.errors = 3600, 30
    services.gates.metrics.flush(batch, now=services.clock(), process="test")
