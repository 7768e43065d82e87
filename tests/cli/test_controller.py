"""``rollout controller`` (cli/controller.py): one tick, leadership, the interval."""

from __future__ import annotations

import pytest

from rollout.core.model import State
from rollout.services.container import Services
from tests.cli.conftest import Cli, rolling_with_bad_evidence


def test_controller_once_acts_and_reports(run: Cli, services: Services) -> None:
    rolling_with_bad_evidence(services)
    out = run.ok("controller", "--once").stdout
    assert out.startswith("F: kill: error_rate")
    assert services.flags.get("F").state is State.KILLED


def test_controller_once_refuses_when_another_leads(run: Cli, services: Services) -> None:
    from rollout.wiring import build_controller

    assert build_controller(services).lead()
    assert "another controller" in run.fails(1, "controller", "--once")


@pytest.mark.parametrize("interval", ["0", "-1", "abc", "99999"])
def test_controller_interval_is_checked(run: Cli, interval: str) -> None:
    run.fails(2, "controller", "--interval", interval, "--once")
