"""Time from navigation to a drawn dashboard, in Debian's Chromium driven by Playwright.

Two pages, against a real ``rollout serve --no-controller`` on a real redis-server:

- the list with 200 flags, each row and its error-rate trend drawn (the trends of all flags
  come from one ``GET /api/v1/trends``);
- a flag page over a 3-day stage (864 five-minute steps per arm), every chart drawn.

"Drawn" is read in the page: the moment every row has its trend canvas (or every chart has
its points), against ``performance.timeOrigin`` (the navigation's start). Each page is loaded
RUNS times in one tab (signed in, assets revalidated with 304s, as an operator's reloads are);
the first load is reported apart (cold). Baseline in the same run: navigation to ``/healthz``
(a JSON answer, no script) and to the page shell alone (its scripts and styles, no data).

Also the server side of the data the flag page needs: ``GET /api/v1/flags/KEY/metrics`` for
the 3-day stage at 5-minute steps, over HTTP on loopback, with ``/healthz`` as its baseline.
Target (issue 9): under 1 s for each page; under 100 ms of server time for the metrics route.

    .venv/bin/python bench/dashboard.py [--flags 200] [--days 3] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rollout.settings import Settings
from rollout.storage.connection import client_for_url
from rollout.storage.metrics import Batch
from rollout.wiring import build_services
from tests.browser.harness import (
    ADMIN_TOKEN,
    Stack,
    browser_missing,
    chromium,
    serve,
    sign_in,
)

STEP = 300
DEEP = "PROMPT_IMPROVER_ENABLED"
PLAN: dict[str, Any] = {
    "stages": [
        {"percent": 10, "bake": "3d", "min_samples": 1000},
        {"percent": 50},
        {"percent": 100},
    ],
    "gates": [{"metric": "error_rate", "warn": 0.05, "critical": 0.1, "min_samples": 100}],
}

LIST_DRAWN = """(count) => {
    const rows = document.querySelectorAll("tbody tr[data-flag]");
    const drawn = document.querySelectorAll("td.trend[data-drawn=chart] canvas");
    if (rows.length === count && drawn.length === count) {
        window.__drawnAt = window.__drawnAt || performance.now();
        return true;
    }
    return false;
}"""
FLAG_DRAWN = """() => {
    const charts = [...document.querySelectorAll("figure[data-chart]")];
    const ready = charts.length >= 3 && charts.every((f) => Number(f.dataset.points) > 0)
        && document.querySelector("tr[data-gate]") !== null;
    if (ready) window.__drawnAt = window.__drawnAt || performance.now();
    return ready;
}"""
SHELL_READY = """() => {
    if (document.querySelector("h1")) window.__drawnAt = window.__drawnAt || performance.now();
    return !!window.__drawnAt;
}"""


def seed(redis_url: str, flags: int, days: float) -> None:
    """``flags`` flags whose stage began ``days`` ago; DEEP has outcomes every 5 minutes since,
    the others over the trend's last two hours (what the list draws)."""
    now = time.time()
    start = now - days * 86400
    client = client_for_url(redis_url)
    settings = Settings(_env_file=None, redis_url=redis_url)  # type: ignore[call-arg]
    services = build_services(settings, redis_client=client, clock=lambda: start)
    keys = [DEEP] + [f"FLAG_{i:03d}" for i in range(1, flags)]
    for key in keys:
        services.flags.create(key, actor="bench", description=f"bench flag {key}", **PLAN)
        services.flags.advance(key, actor="bench")
    epoch = services.flags.get(DEEP).stage_started_at or 0
    metrics = services.gates.metrics
    steps = int(days * 86400 // STEP)
    for i in range(steps):
        at = start + (i + 0.5) * STEP
        batch = Batch()
        for arm, samples, errors in (("treatment", 120, 2 + i % 5), ("control", 1080, 11)):
            tally = batch.tally(DEEP, epoch, arm)
            tally.samples, tally.errors, tally.exposures = samples, errors, samples
            tally.errors_by_type = {"Timeout": errors}
            tally.latency = {60 + i % 7: samples // 2, 70: samples - samples // 2}
        batch.memory_mb[(DEEP, epoch)] = 20 + (i % 30)
        if at >= now - 2 * 3600:  # the list's trend span: the other flags too
            for key in keys[1:]:
                tally = batch.tally(key, epoch, "treatment")
                tally.samples, tally.errors = 100, i % 4
                tally.latency = {60: 100}
        metrics.flush(batch, now=at, process="bench")
    client.close()


def timed_loads(page: Any, url: str, ready: str, arg: Any, runs: int) -> list[float]:
    """Milliseconds from navigation start to ``ready`` being true, for each load."""
    found = []
    for _ in range(runs):
        page.goto(url)
        page.wait_for_function(ready, arg=arg, timeout=30_000, polling=5)
        found.append(float(page.evaluate("window.__drawnAt")))
    return found


def navigation_ms(page: Any, url: str, runs: int) -> list[float]:
    found = []
    for _ in range(runs):
        page.goto(url)
        found.append(
            float(page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd"))
        )
    return found


def http_ms(url: str, runs: int, token: str | None = None) -> list[float]:
    found = []
    for _ in range(runs):
        request = urllib.request.Request(url)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        began = time.perf_counter()
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        found.append((time.perf_counter() - began) * 1000)
        assert body
    return found


def line(name: str, values: list[float], cold: float | None = None) -> str:
    text = f"  {name:<44} median {statistics.median(values):7.1f} ms   best {min(values):7.1f} ms"
    return text + (f"   cold {cold:7.1f} ms" if cold is not None else "")


def measure(stack: Stack, args: argparse.Namespace) -> dict[str, list[float]]:
    began = time.perf_counter()
    seed(stack.redis_url, args.flags, args.days)
    steps = int(args.days * 86400 // STEP)
    print(
        f"seeded {args.flags} flags, a {args.days:g}-day stage of {DEEP} ({steps} steps x 2 "
        f"arms) in {time.perf_counter() - began:.1f}s"
    )
    metrics_url = f"{stack.base}/api/v1/flags/{DEEP}/metrics?step=5m"
    http_ms(metrics_url, 2, ADMIN_TOKEN)  # warm the worker's imports and caches
    history = stack.http("GET", f"/api/v1/flags/{DEEP}/metrics?step=5m").body
    filled = sum(1 for point in history["series"]["treatment"] if point["samples"])
    print(f"the flag page charts {filled} steps with samples (of {steps} seeded)")
    found = {
        "healthz": http_ms(stack.base + "/healthz", 20),
        "metrics": http_ms(metrics_url, 20, ADMIN_TOKEN),
        "trends": http_ms(stack.base + "/api/v1/trends", 10, ADMIN_TOKEN),
        "list": http_ms(stack.base + "/api/v1/flags", 10, ADMIN_TOKEN),
    }
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        sign_in(page, stack.base, ADMIN_TOKEN)
        runs = args.runs
        found["nav_healthz"] = navigation_ms(page, stack.base + "/healthz", runs)
        found["nav_shell"] = timed_loads(page, stack.base + "/flags/NOPE", SHELL_READY, None, runs)
        found["nav_list"] = timed_loads(page, stack.base + "/", LIST_DRAWN, args.flags, runs + 1)
        found["nav_flag"] = timed_loads(
            page, f"{stack.base}/flags/{DEEP}", FLAG_DRAWN, None, runs + 1
        )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--flags", type=int, default=200)
    parser.add_argument("--days", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    missing = browser_missing()
    if missing:
        raise SystemExit(missing)
    with (
        tempfile.TemporaryDirectory(prefix="rollout-bench-") as tmp,
        serve(Path(tmp), controller=False) as stack,
    ):
        found = measure(stack, args)
    print("\nServer, over HTTP on loopback:")
    print(line("GET /healthz (baseline)", found["healthz"]))
    print(line(f"GET metrics, {args.days:g}-day stage at 5m steps", found["metrics"]))
    over = statistics.median(found["metrics"]) - statistics.median(found["healthz"])
    print(f"  {'':<44} = {over:.1f} ms over the baseline")
    print(line(f"GET /api/v1/trends ({args.flags} flags)", found["trends"]))
    print(line(f"GET /api/v1/flags ({args.flags} flags)", found["list"]))
    print(f"\nChromium, navigation start -> drawn ({args.runs} warm loads each):")
    print(line("/healthz (baseline: JSON, no script)", found["nav_healthz"]))
    print(line("page shell, 'Flag not found' (no data)", found["nav_shell"]))
    lists, flag = found["nav_list"], found["nav_flag"]
    print(line(f"list: {args.flags} rows, every trend drawn", lists[1:], lists[0]))
    print(line(f"flag page: {args.days:g}-day history, charts drawn", flag[1:], flag[0]))
    worst = max(statistics.median(lists[1:]), statistics.median(flag[1:]))
    verdict = "met" if worst < 1000 else "MISSED"
    print(f"\ntarget under 1000 ms each: {verdict} (worst median {worst:.0f} ms)")


if __name__ == "__main__":
    main()
