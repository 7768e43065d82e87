"""core.outage: which failures and successes of a retrying loop are worth a line."""

from __future__ import annotations

from rollout.core.outage import Outage


def test_an_outage_is_reported_when_it_starts_and_when_it_ends_only() -> None:
    outage = Outage()
    assert not outage.down
    assert outage.succeeded() is False  # all is well: nothing to say
    assert [outage.failed() for _ in range(4)] == [True, False, False, False]
    assert outage.down
    assert [outage.succeeded() for _ in range(3)] == [True, False, False]
    assert not outage.down
    assert outage.failed() is True  # the next outage is reported again
