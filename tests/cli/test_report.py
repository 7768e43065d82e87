"""rollout report: a killed and a completed rollout, each in Markdown and in offline HTML."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from rollout.services.container import Services
from rollout.storage.metrics import Batch
from tests.cli.conftest import Cli
from tests.support import FakeClock

STAGES = [{"percent": 10, "bake": "1h"}, {"percent": 50, "bake": "1h"}, {"percent": 100}]
GATES = [{"metric": "error_rate", "warn": 0.05, "critical": 0.10, "min_samples": 100}]
XSS = "<img src=x onerror=alert(1)> | pipe"


def traffic(services: Services, key: str, clock: FakeClock, treatment: tuple[int, int]) -> None:
    """Ten minutes of outcomes, flushed each minute as SDKs would: (samples, errors) per flush."""
    for _minute in range(10):
        flag = services.flags.get(key)
        batch = Batch()
        for arm, (samples, errors) in (("treatment", treatment), ("control", (90, 1))):
            tally = batch.tally(key, flag.stage_started_at or 0, arm)
            tally.samples, tally.errors, tally.exposures = samples, errors, 2 * samples
            tally.errors_by_type = {"Timeout": errors} if errors else {}
            tally.latency = {50: samples}
        services.gates.metrics.flush(batch, now=clock(), process="p")
        clock.advance(60)


def killed(services: Services, clock: FakeClock) -> str:
    services.flags.create("K", actor="alice", stages=STAGES, gates=GATES, description=XSS)
    services.flags.advance("K", actor="alice")
    traffic(services, "K", clock, (10, 0))
    services.flags.advance("K", actor="controller")
    traffic(services, "K", clock, (50, 20))
    services.flags.kill("K", reason=f"error spike {XSS}", actor="controller")
    return "K"


def completed(services: Services, clock: FakeClock) -> str:
    services.flags.create("C", actor="alice", stages=STAGES, gates=GATES)
    for _stage in STAGES:
        services.flags.advance("C", actor="controller")
        traffic(services, "C", clock, (20, 0))
    services.flags.advance("C", actor="bob", reason="Go")
    traffic(services, "C", clock, (30, 0))
    return "C"


class Page(HTMLParser):
    """Every tag and attribute of the page, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def self_contained(page: Page) -> None:
    names = {tag for tag, _attrs in page.tags}
    assert "script" not in names and "link" not in names and "img" not in names
    for _tag, attrs in page.tags:
        for name in ("src", "href", "xlink:href", "action"):
            assert name not in attrs, attrs  # nothing to fetch, nothing to follow
        assert not any(a.startswith("on") for a in attrs)
        assert "http" not in str(attrs.get("style", ""))


@pytest.mark.parametrize("scenario", [killed, completed])
def test_both_formats_render(
    run: Cli, services: Services, clock: FakeClock, tmp_path: Path, scenario: Any
) -> None:
    key = scenario(services, clock)
    report = run.json("report", key)
    loads = report["totals"]["loads"]
    assert loads == sum(a["exposures"] + a["samples"] for a in report["totals"]["arms"].values())
    markdown = run.ok("report", key).stdout
    assert markdown.startswith(f"# Rollout report: {key}")
    assert f"**{loads:,}** loads" in markdown
    assert "## Go / No-Go" in markdown and "## Timeline" in markdown
    out = tmp_path / "report.html"
    assert run.ok("report", key, "--format", "html", "--out", str(out)).stdout.strip() == (
        f"wrote the html report of {key} to {out}"
    )
    page = parse(out.read_text())
    self_contained(page)
    svgs = [attrs for tag, attrs in page.tags if tag == "svg" and attrs.get("role") == "img"]
    assert len(svgs) == 3
    assert any(tag == "polyline" for tag, _attrs in page.tags)  # a chart with data in it
    assert f"Total loads: {loads:,}" in "".join(page.text)


def test_the_killed_rollout_reads_as_go_then_no_go(
    run: Cli, services: Services, clock: FakeClock
) -> None:
    killed(services, clock)
    report = run.json("report", "K")
    verdicts = [(d["verdict"], d["move"], d["percent"]) for d in report["decisions"]]
    assert verdicts == [("go", "advance", 10), ("no-go", "kill", 50)]
    kill = report["decisions"][1]
    assert kill["by"] == "controller" and kill["samples"]["treatment"] == 500
    assert [g["verdict"] for g in kill["gates"]] == ["fail"]
    treatment = report["totals"]["arms"]["treatment"]
    assert (treatment["samples"], treatment["exposures"], treatment["errors"]) == (600, 1200, 200)
    assert report["totals"]["arms"]["control"]["loads"] == 20 * 270
    trend = [t["error_rate"] for t in report["trends"]["treatment"]]
    assert trend == [0.0, 0.4] and report["current"] is None
    markdown = run.ok("report", "K").stdout
    assert "**NO-GO** at 50%: `kill` by controller" in markdown
    assert "<img" not in run.ok("report", "K", "--format", "html").stdout  # escaped, inert
    assert "\\|" in markdown  # a pipe in a description cannot break a table


def test_the_completed_rollout_shows_the_running_stage(
    run: Cli, services: Services, clock: FakeClock
) -> None:
    completed(services, clock)
    report = run.json("report", "C")
    assert [d["move"] for d in report["decisions"]] == ["advance", "advance", "complete"]
    assert report["decisions"][-1]["by"] == "bob" and report["decisions"][-1]["reason"] == "Go"
    assert report["current"]["ended_by"] is None and report["current"]["state"] == "complete"
    assert report["current"]["arms"]["treatment"]["samples"] == 300
    assert report["totals"]["arms"]["treatment"]["samples"] == 3 * 200 + 300
    assert [e["action"] for e in report["timeline"]][:2] == ["create", "advance"]


def test_unknown_flag_is_one_line(run: Cli) -> None:
    assert "does not exist" in run.fails(1, "report", "NOPE")
    assert "is not one of 'md', 'html'" in run.fails(2, "report", "X", "--format", "pdf")
