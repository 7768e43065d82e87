"""``rollout watch`` (cli/watch.py): a flag's state, readings and status word."""

from __future__ import annotations

from rollout.services.container import Services
from tests.cli.conftest import Cli, rolling_with_bad_evidence


def test_watch_shows_state_readings_and_status(run: Cli, services: Services) -> None:
    rolling_with_bad_evidence(services)
    out = run.ok("watch", "F", "--count", "1").stdout
    assert "rolling at 10%" in out
    assert "treatment" in out and "25.00%" in out
    assert "error_rate" in out


def test_watch_unknown_flag_is_refused(run: Cli) -> None:
    run.fails(1, "watch", "NOPE", "--count", "1")
