"""The dashboard in Debian's Chromium, against a real ``rollout serve`` with SDK traffic.

What an operator does: sign in, read the list, open a flag and its charts, kill it and watch
the SDK turn it off, see a change made with the CLI appear without a reload; and what must
never happen: write controls for a read token, markup from a description, a request to another
origin, a refusal swallowed.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from rollout import RolloutClient
from tests.browser.conftest import Page, save_failure_screenshot, wait_for_samples
from tests.browser.harness import ADMIN_TOKEN, READ_TOKEN, Stack, sign_in, start_traffic

pytestmark = pytest.mark.slow

LIVE = "PROMPT_IMPROVER_ENABLED"
XSS = "<img src=x onerror=alert(1)>"
PLAN: dict[str, Any] = {
    "stages": [
        {"percent": 10, "bake": "1h", "min_samples": 500},
        {"percent": 50, "bake": "1h"},
        {"percent": 100},
    ],
    # Thresholds far above the traffic's 2% errors: the controller holds, it never kills.
    "gates": [{"metric": "error_rate", "warn": 0.3, "critical": 0.6, "min_samples": 50}],
}
# The traffic records no business value: this gate reads insufficient (and only holds).
VALUE_GATE = {"metric": "value:improvement_delta", "warn": -0.02, "critical": -0.05}
WRITE_BUTTONS = ["Advance", "Rollback", "Pause", "Resume", "Kill", "Revive", "Set percent"]


@pytest.fixture(scope="module", autouse=True)
def seeded(stack: Stack) -> Stack:
    stack.create(
        LIVE,
        description="Prompt-improver enhancements in the skill loader",
        stages=PLAN["stages"],
        gates=[*PLAN["gates"], VALUE_GATE],
    )
    stack.create("KILL_ME", description="killed from the page", **PLAN)
    stack.create("CLI_SET", description="set from the CLI", **PLAN)
    stack.create("RACE", description="moved by someone else", **PLAN)
    stack.create("XSS_FLAG", description=XSS)
    stack.create("MOVES", description="moved from the page", **PLAN)
    for key in (LIVE, "CLI_SET", "RACE", "MOVES"):
        assert stack.http("POST", f"/api/v1/flags/{key}/advance", {}).status == 200
    assert stack.http("PUT", "/api/v1/flags/KILL_ME/percentage", {"percent": 100}).status == 200
    start_traffic(stack, [LIVE, "KILL_ME"])
    wait_for_samples(stack, LIVE)
    return stack


def flag_row(page: Any, key: str) -> Any:
    return page.locator(f'tr[data-flag="{key}"]')


def canvas_painted(page: Any, selector: str) -> int:
    """How many pixels of the first canvas under ``selector`` have been painted."""
    return int(
        page.evaluate(
            """(selector) => {
                const canvas = document.querySelector(selector + " canvas");
                if (!canvas) return 0;
                const pixels = canvas.getContext("2d")
                    .getImageData(0, 0, canvas.width, canvas.height).data;
                let painted = 0;
                for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted += 1;
                return painted;
            }""",
            selector,
        )
    )


def test_sign_in_list_open_a_flag_and_its_charts(page: Page, stack: Stack) -> None:
    p = page.page
    sign_in(p, stack.base, ADMIN_TOKEN)
    expect(p.get_by_text("Admin", exact=True)).to_be_visible()
    row = flag_row(p, LIVE)
    expect(row).to_contain_text("rolling")
    expect(row).to_contain_text("10%")
    expect(row).to_contain_text("1/3")
    # The trend comes from the one bulk call, drawn on a canvas.
    expect(row.locator("td.trend")).to_have_attribute("data-drawn", "chart", timeout=15_000)
    assert canvas_painted(p, f'tr[data-flag="{LIVE}"] td.trend') > 0
    trend_calls = [url for url in page.requests if "/api/v1/trends" in url]
    assert len(trend_calls) == 1  # one call for every row, not one per flag

    p.get_by_label("Filter").fill("skill loader")
    expect(p.locator("tbody tr:visible")).to_have_count(1)
    p.get_by_label("Filter").fill("")
    p.get_by_label("State").select_option("draft")
    expect(p.locator("tbody tr:visible")).to_have_count(1)
    expect(flag_row(p, "XSS_FLAG")).to_be_visible()
    p.get_by_label("State").select_option("")

    p.get_by_role("link", name=LIVE).click()
    expect(p).to_have_url(f"{stack.base}/flags/{LIVE}")
    expect(p.locator("ol.stepper li.current")).to_contain_text("10%")
    expect(p.get_by_text("Bake remaining")).to_be_visible()
    expect(p.locator('tr[data-gate="error_rate"]')).to_contain_text("pass")
    value_row = p.locator('tr[data-gate="value:improvement_delta"]')
    expect(value_row).to_contain_text("-0.02 / -0.05")
    expect(value_row).to_contain_text("insufficient")
    # The sample ratio check of GET /gates, as text: the split at 10% agrees (or is too young).
    expect(p.locator("p.srm")).to_have_text(
        re.compile(r"^sample ratio: (pass|insufficient) \(observed [0-9.]+% / expected 10\.0%\)$")
    )
    for chart in ("error_rate", "p95", "samples"):
        figure = p.locator(f'figure[data-chart="{chart}"]')
        expect(figure).to_be_visible(timeout=15_000)
        p.wait_for_function(
            "(chart) => Number(document.querySelector(`figure[data-chart=${chart}]`)"
            "?.dataset.points) > 0",
            arg=chart,
            timeout=15_000,
        )
        assert canvas_painted(p, f'figure[data-chart="{chart}"]') > 0
    expect(p.locator("ol.timeline")).to_contain_text("advance")

    p.get_by_label("Range").select_option("all")
    expect(p.locator('figure[data-chart="error_rate"]')).to_be_visible()
    assert any("/metrics?since=" in url for url in page.requests)


def test_kill_through_the_page_turns_the_sdk_off(page: Page, stack: Stack) -> None:
    client = RolloutClient(stack.redis_url, environ={})
    try:
        sdk_flag = client.flag("KILL_ME")
        users = [f"user-{i}" for i in range(50)]
        deadline = time.monotonic() + 10
        while not all(sdk_flag.is_enabled(u) for u in users) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(sdk_flag.is_enabled(u) for u in users)  # at 100%: on for everyone

        p = page.page
        sign_in(p, stack.base, ADMIN_TOKEN, "/flags/KILL_ME")
        p.get_by_role("button", name="Kill", exact=True).click()
        p.get_by_label("Reason").fill("error spike seen on the dashboard")
        p.get_by_role("button", name="Confirm kill").click()
        expect(p.locator(".facts .badge")).to_have_text("killed")
        expect(p.locator(".kill-record")).to_contain_text("error spike seen on the dashboard")

        deadline = time.monotonic() + 10  # generous: propagation is milliseconds
        while any(sdk_flag.is_enabled(u) for u in users) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not any(sdk_flag.is_enabled(u) for u in users)
        # Now only Revive is open; the others say why not.
        expect(p.get_by_role("button", name="Revive")).to_be_enabled()
        advance = p.get_by_role("button", name="Advance", exact=True)
        expect(advance).to_be_disabled()
        expect(advance).to_have_attribute(
            "title", "cannot advance KILL_ME: it is killed (revive it first)"
        )
        entry = stack.http("GET", "/api/v1/audit?flag=KILL_ME&limit=1").body["entries"][0]
        assert (entry["action"], entry["actor"]) == ("kill", "admin")
    finally:
        client.close()


def test_a_cli_set_appears_in_the_open_page(page: Page, stack: Stack) -> None:
    p = page.page
    sign_in(p, stack.base, ADMIN_TOKEN, "/flags/CLI_SET")
    expect(p.locator(".facts")).to_contain_text("10%")
    done = stack.cli("set", "CLI_SET", "30", "--reason", "from the CLI")
    assert done.returncode == 0, done.stderr
    # Polled every second with If-None-Match: the change shows within 2 s, no reload.
    expect(p.locator(".facts")).to_contain_text("30%", timeout=2_000)
    expect(p.locator("ol.timeline")).to_contain_text("from the CLI")
    flag_polls = [u for u in page.requests if u == f"{stack.base}/api/v1/flags/CLI_SET"]
    assert len(flag_polls) >= 2


def test_a_read_token_sees_no_write_controls(page: Page, stack: Stack) -> None:
    p = page.page
    sign_in(p, stack.base, READ_TOKEN)
    expect(p.get_by_text("Read-only", exact=True)).to_be_visible()
    expect(flag_row(p, LIVE)).to_be_visible()
    expect(p.get_by_role("button", name="Kill all")).to_have_count(0)
    p.get_by_role("link", name=LIVE).click()
    expect(p.locator('tr[data-gate="error_rate"]')).to_be_visible()
    for name in WRITE_BUTTONS:
        expect(p.get_by_role("button", name=name, exact=True)).to_have_count(0)
    expect(p.get_by_text("Read-only", exact=True)).to_be_visible()


def test_an_xss_description_stays_text(page: Page, stack: Stack) -> None:
    p = page.page
    sign_in(p, stack.base, ADMIN_TOKEN)
    expect(flag_row(p, "XSS_FLAG").locator(".description")).to_have_text(XSS)
    p.get_by_role("link", name="XSS_FLAG").click()
    expect(p.locator("p.description")).to_have_text(XSS)
    assert p.locator("img").count() == 0
    # The page fixture checks that no dialog opened and no script error happened.


def test_a_refusal_is_shown_as_the_apis_message(page: Page, stack: Stack) -> None:
    p = page.page
    # Fake timers: the page stops polling once paused, so it keeps the state it last saw,
    # while another operator kills the flag: the race a 409 exists for.
    p.clock.install()
    sign_in(p, stack.base, ADMIN_TOKEN, "/flags/RACE")
    pause = p.get_by_role("button", name="Pause", exact=True)
    expect(pause).to_be_enabled()
    p.clock.pause_at(datetime.now() + timedelta(seconds=1))
    page.settle()  # a poll that the jump set off has landed before the kill
    assert stack.http("POST", "/api/v1/flags/RACE/kill", {"reason": "someone else"}).status == 200
    expected = stack.http("POST", "/api/v1/flags/RACE/pause", {})
    assert expected.status == 409
    pause.click()
    alert = p.get_by_role("alert")
    expect(alert).to_have_text(expected.body["error"]["message"])


def test_the_moves_through_the_page(page: Page, stack: Stack) -> None:
    p = page.page
    sign_in(p, stack.base, ADMIN_TOKEN, "/flags/MOVES")
    facts = p.locator(".facts")
    expect(facts).to_contain_text("10%")
    expect(p.get_by_role("button", name="Resume")).to_be_disabled()

    p.get_by_role("button", name="Set percent").click()
    p.get_by_label("Percent").fill("12.345")
    p.get_by_role("button", name="Confirm set").click()
    expect(p.get_by_role("alert")).to_contain_text("two decimals")  # the API's own words
    p.get_by_label("Percent").fill("25")
    p.get_by_role("button", name="Confirm set").click()
    expect(facts).to_contain_text("25%")

    p.get_by_role("button", name="Pause", exact=True).click()
    expect(facts.locator(".badge")).to_have_text("paused")
    expect(p.get_by_role("button", name="Pause", exact=True)).to_be_disabled()
    p.get_by_role("button", name="Resume").click()
    expect(facts.locator(".badge")).to_have_text("rolling")

    p.get_by_role("button", name="Rollback").click()
    p.get_by_role("button", name="Confirm rollback").click()
    expect(facts.locator(".badge")).to_have_text("draft")
    p.get_by_role("button", name="Advance", exact=True).click()
    expect(facts).to_contain_text("10%")
    actions = [e["action"] for e in stack.http("GET", "/api/v1/audit?flag=MOVES").body["entries"]]
    assert actions[:6] == ["advance", "rollback", "resume", "pause", "set", "advance"]


def test_unknown_flag_page_says_so(page: Page, stack: Stack) -> None:
    p = page.page
    sign_in(p, stack.base, ADMIN_TOKEN, "/flags/NOPE")
    expect(p.get_by_role("heading", name="Flag not found")).to_be_visible()
    expect(p.get_by_text("flag 'NOPE' does not exist")).to_be_visible()


def test_a_wrong_then_a_revoked_token_lead_back_to_sign_in(page: Page, stack: Stack) -> None:
    p = page.page
    p.goto(stack.base + "/")
    p.get_by_label("Token").fill("wrong-token-0123456789abcdef")
    p.get_by_role("button", name="Sign in").click()
    expect(p.get_by_role("alert")).to_have_text("unknown token")
    assert p.evaluate("sessionStorage.length") == 0  # a refused token is never kept

    sign_in(p, stack.base, ADMIN_TOKEN)
    assert p.evaluate("Object.values(sessionStorage)") == [ADMIN_TOKEN]
    assert p.evaluate("document.cookie") == ""
    assert all(ADMIN_TOKEN not in url for url in page.requests)
    # The server stops honouring the token the tab holds (as when it is revoked).
    p.evaluate("sessionStorage.setItem('rollout.token', 'revoked-token-0123456789abcdef')")
    expect(p.get_by_role("button", name="Sign in")).to_be_visible(timeout=5_000)
    expect(p.get_by_role("alert")).to_have_text("unknown token")

    sign_in(p, stack.base, ADMIN_TOKEN)
    p.get_by_role("button", name="Sign out").click()
    expect(p.get_by_label("Token")).to_be_visible()
    assert p.evaluate("sessionStorage.length") == 0


def test_a_failing_test_leaves_a_screenshot(page: Page, stack: Stack) -> None:
    p = page.page
    p.goto(stack.base + "/")
    path = save_failure_screenshot(p, "tests/browser/test_dashboard.py::demo[x]")
    try:
        assert path.name == "tests_browser_test_dashboard.py_demo_x_.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        path.unlink()


def test_kill_all_asks_for_a_reason(page: Page, stack: Stack) -> None:
    # Last: it kills every flag that serves users.
    p = page.page
    sign_in(p, stack.base, ADMIN_TOKEN)
    p.get_by_role("button", name="Kill all").click()
    p.get_by_label("Reason").fill("bad day")
    p.get_by_role("button", name="Confirm kill all").click()
    expect(p.locator(".note")).to_contain_text("Killed")
    expect(flag_row(p, LIVE).locator(".badge")).to_have_text("killed", timeout=3_000)
    assert stack.http("GET", f"/api/v1/flags/{LIVE}").body["kill"]["reason"] == "bad day"
