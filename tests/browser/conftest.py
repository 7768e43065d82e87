"""Fixtures of the browser tests: one ``rollout serve`` with SDK traffic for the module, one
Chromium for the session, a fresh page (own sessionStorage) per test that records every request
and script error, and a screenshot in ``.browser-failures/`` of any test that fails."""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.harness import Stack, browser_missing, chromium, serve, start_traffic

ROOT = Path(__file__).resolve().parents[2]
FAILURES = ROOT / ".browser-failures"
SKIPPED = browser_missing()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SKIPPED is None:
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.skip(reason=SKIPPED))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SKIPPED is not None:
        terminalreporter.write_line(f"*** {SKIPPED}", yellow=True, bold=True)


def save_failure_screenshot(page: Any, nodeid: str) -> Path:
    FAILURES.mkdir(exist_ok=True)
    path = FAILURES / (re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid) + ".png")
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    page = getattr(item, "funcargs", {}).get("page")
    if report.when == "call" and report.failed and page is not None:
        try:
            path = save_failure_screenshot(page.page, item.nodeid)
            report.sections.append(("browser", f"screenshot of the failure: {path}"))
        except Exception as error:  # a dead page must not hide the test's own failure
            report.sections.append(("browser", f"no screenshot: {error}"))


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="rb-") as directory, serve(Path(directory)) as found:
        yield found


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    with chromium() as found:
        yield found


class Page:
    """A page with its record: every URL it asked for, every script error, every dialog."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.in_flight = 0
        page.on("request", self._request)
        page.on("requestfinished", self._done)
        page.on("requestfailed", self._done)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._console)
        page.on("dialog", self._dialog)

    def _request(self, request: Any) -> None:
        self.requests.append(request.url)
        self.in_flight += 1

    def _done(self, _request: Any) -> None:
        self.in_flight -= 1

    def settle(self, timeout: float = 5.0) -> None:
        """Until no request of the page is in flight (events arrive while Playwright waits)."""
        deadline = time.monotonic() + timeout
        while self.in_flight and time.monotonic() < deadline:
            self.page.wait_for_timeout(20)
        assert self.in_flight == 0, f"{self.in_flight} requests still in flight"

    def _console(self, message: Any) -> None:
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(message.text)  # a 4xx the page handled is not a script error

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def page(browser: Any, stack: Stack) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    recorded = Page(context.new_page())
    try:
        yield recorded
        # Every test, not only one: nothing the page loads or calls may leave the app's origin.
        foreign = [url for url in recorded.requests if not url.startswith(stack.base + "/")]
        assert foreign == [], foreign
        assert recorded.errors == []
        assert recorded.dialogs == []
    finally:
        context.close()


def wait_for_samples(stack: Stack, key: str, timeout: float = 20.0) -> None:
    """Until the flag's stage has treatment samples (the SDK flushes every 0.2 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = stack.http("GET", f"/api/v1/flags/{key}/gates").body
        if report["arms"]["treatment"]["samples"] > 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"no samples for {key} within {timeout}s")


__all__ = ["Page", "start_traffic", "wait_for_samples"]
