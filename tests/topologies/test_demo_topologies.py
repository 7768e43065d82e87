"""``rollout demo`` with ``--redis-url`` naming a Sentinel group or a Cluster (issue 8: "rollout
serve and rollout demo work with ROLLOUT_REDIS_URL set to each topology"; serve's run is in
``tests/e2e/test_triggers_and_notifier.py``)."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Cli
from tests.fixtures_redis import topology_client, topology_url


@pytest.mark.slow
@pytest.mark.parametrize("topology", ["sentinel", "cluster"])
def test_the_demo_kills_its_flag_on_every_topology(
    request: pytest.FixtureRequest, topology: str
) -> None:
    client = topology_client(request, topology)  # the shared group, flushed
    client.close()
    result = Cli(None)(
        "--redis-url",
        topology_url(request, topology),
        "demo",
        "--inject-errors",
        "0.3",
        "--workers",
        "2",
    )
    assert result.exit_code == 0, result.output
    assert "KILLED by controller: error_rate" in result.stdout
    assert "users still getting the improver: 0 of 10000 answers" in result.stdout
