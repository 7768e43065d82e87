"""Force advance in Debian's Chromium: past a gate that reads fail, with a reason, into the audit.

Its own ``rollout serve``, started with ``--no-controller``: a controller kills a rolling flag
whose gate reads fail (DESIGN §3) long before an operator could force it past, and a gate that
only warns or holds refuses no advance. Nothing else moves the flags here; the SDK traffic
fails 50% of the treatment's calls against a critical error rate of 10%.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from rollout import RolloutClient
from tests.browser.conftest import Page
from tests.browser.harness import (
    ADMIN_TOKEN,
    READ_TOKEN,
    Stack,
    serve,
    sign_in,
    start_traffic,
)

pytestmark = pytest.mark.slow

FORCED = "FORCE_ME"
READ_ONLY = "FORCE_NOT_FOR_READERS"
PLAN: dict[str, Any] = {
    "stages": [
        {"percent": 10, "bake": "1h", "min_samples": 100},
        {"percent": 50, "bake": "1h"},
        {"percent": 100},
    ],
    "gates": [{"metric": "error_rate", "warn": 0.05, "critical": 0.10, "min_samples": 50}],
}
REASON = "errors are the upstream outage INC-4711, not this flag"
USERS = [f"user-{i}" for i in range(2000)]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # Overrides conftest's for this module (the page fixture takes this one too).
    with (
        tempfile.TemporaryDirectory(prefix="rb-") as directory,
        serve(Path(directory), controller=False) as found,
    ):
        yield found


def gate_verdict(stack: Stack, key: str) -> str:
    report = stack.http("GET", f"/api/v1/flags/{key}/gates").body
    (gate,) = [g for g in report["gates"] if g["metric"] == "error_rate"]
    return str(gate["verdict"])


@pytest.fixture(scope="module", autouse=True)
def failing(stack: Stack) -> Stack:
    for key in (FORCED, READ_ONLY):
        stack.create(key, description="its gate fails, nothing kills it", **PLAN)
        assert stack.http("POST", f"/api/v1/flags/{key}/advance", {}).status == 200
    start_traffic(stack, [FORCED, READ_ONLY], treatment_error_rate=0.5)
    deadline = time.monotonic() + 60  # generous: the SDK flushes every 0.2 s
    while time.monotonic() < deadline:
        if all(gate_verdict(stack, key) == "fail" for key in (FORCED, READ_ONLY)):
            return stack
        time.sleep(0.2)
    seen = {key: gate_verdict(stack, key) for key in (FORCED, READ_ONLY)}
    raise AssertionError(f"the gates never read fail: {seen}")


def enabled(flag: Any) -> set[str]:
    return {user for user in USERS if flag.is_enabled(user)}


def share(users: set[str]) -> float:
    return len(users) / len(USERS)


def verdict_cell(page: Any) -> Any:
    return page.locator('tr[data-gate="error_rate"] > td:nth-child(3)')


def audit(stack: Stack, key: str) -> list[dict[str, Any]]:
    return stack.http("GET", f"/api/v1/audit?flag={key}").body["entries"]  # type: ignore[no-any-return]


def test_force_advance_past_a_failing_gate(page: Page, stack: Stack) -> None:
    client = RolloutClient(stack.redis_url, environ={})
    try:
        sdk_flag = client.flag(FORCED)
        deadline = time.monotonic() + 10
        while not 0.05 < share(enabled(sdk_flag)) < 0.15 and time.monotonic() < deadline:
            time.sleep(0.05)
        at_10 = enabled(sdk_flag)
        assert 0.05 < share(at_10) < 0.15
        # What the page is told about the move (gates are not read there: the state allows
        # it) and what the server answers a plain advance while the gate fails.
        allowed = stack.http("GET", f"/api/v1/flags/{FORCED}/moves").body["moves"]
        assert allowed["advance"] is None
        refused = stack.http("POST", f"/api/v1/flags/{FORCED}/advance", {})
        assert refused.status == 409 and refused.body["error"]["code"] == "gate_failing"
        entries_before = len(audit(stack, FORCED))

        p = page.page
        sign_in(p, stack.base, ADMIN_TOKEN, f"/flags/{FORCED}")
        facts = p.locator(".facts")
        expect(facts).to_contain_text("10%")
        expect(verdict_cell(p)).to_have_text("fail")
        advance = p.get_by_role("button", name="Advance", exact=True)
        expect(advance).to_be_enabled()
        expect(advance).to_have_attribute("title", "")
        force = p.get_by_role("button", name="Force advance", exact=True)
        expect(force).to_have_count(0)  # offered only once the server refused

        advance.click()
        expect(p.get_by_role("alert")).to_have_text(refused.body["error"]["message"])
        expect(p.get_by_text("A gate reads fail. Advance anyway?")).to_be_visible()
        expect(force).to_be_visible()
        # Cancel: nothing moves.
        p.get_by_role("button", name="Cancel").click()
        expect(force).to_have_count(0)

        advance.click()
        expect(force).to_be_visible()
        force.click()  # without a reason: refused by the page, nothing sent
        expect(p.get_by_role("alert")).to_have_text("A forced advance needs a reason.")
        assert stack.http("GET", f"/api/v1/flags/{FORCED}").body["percent"] == 10
        assert len(audit(stack, FORCED)) == entries_before  # the refusals wrote nothing

        p.get_by_label("Reason").fill(REASON)
        assert gate_verdict(stack, FORCED) == "fail"  # still: this advance is forced past it
        force.click()
        expect(facts).to_contain_text("50%")
        expect(p.locator("ol.stepper li.current")).to_contain_text("50%")
        expect(p.locator(".note")).to_have_text(f"Force advance: {FORCED} is rolling at 50%.")
        expect(force).to_have_count(0)
        newest = p.locator("ol.timeline li").first
        expect(newest.locator(".badge")).to_have_text("advance")
        expect(newest.locator(".actor")).to_have_text("admin")
        expect(newest.locator(".reason")).to_have_text(REASON)

        entries = audit(stack, FORCED)
        assert len(entries) == entries_before + 1
        entry = entries[0]
        assert (entry["action"], entry["actor"], entry["reason"]) == ("advance", "admin", REASON)
        assert (entry["before"]["percent"], entry["after"]["percent"]) == (10, 50)
        assert stack.http("GET", f"/api/v1/flags/{FORCED}").body["percent"] == 50

        deadline = time.monotonic() + 10  # generous: propagation is milliseconds
        while not 0.4 < share(enabled(sdk_flag)) < 0.6 and time.monotonic() < deadline:
            time.sleep(0.02)
        at_50 = enabled(sdk_flag)
        assert 0.4 < share(at_50) < 0.6 and at_10 < at_50  # more users, none taken away
    finally:
        client.close()


def test_a_read_token_is_not_offered_the_force(page: Page, stack: Stack) -> None:
    p = page.page
    sign_in(p, stack.base, READ_TOKEN, f"/flags/{READ_ONLY}")
    expect(p.get_by_text("Read-only", exact=True)).to_be_visible()
    expect(verdict_cell(p)).to_have_text("fail")
    expect(p.locator(".facts")).to_contain_text("10%")
    for name in ("Advance", "Force advance"):
        expect(p.get_by_role("button", name=name, exact=True)).to_have_count(0)
    expect(p.get_by_label("Reason")).to_have_count(0)
    # Nor would the server take it from that token.
    forced = stack.http(
        "POST", f"/api/v1/flags/{READ_ONLY}/advance", {"force": True, "reason": "x"}, READ_TOKEN
    )
    assert forced.status == 403, forced.body
    assert stack.http("GET", f"/api/v1/flags/{READ_ONLY}").body["percent"] == 10
