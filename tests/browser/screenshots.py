"""The README's screenshots (docs/dashboard-list.png, docs/dashboard-flag.png), from a real
``rollout serve`` over a made-up week: a dozen flags in every state, and the reference flag
three days into its 50% stage. Run by hand: ``.venv/bin/python -m tests.browser.screenshots``.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from rollout.settings import Settings
from rollout.storage.connection import client_for_url
from rollout.storage.metrics import Batch
from rollout.wiring import build_services
from tests.browser.harness import ADMIN_TOKEN, chromium, serve, sign_in

DOCS = Path(__file__).resolve().parents[2] / "docs"
KEY = "PROMPT_IMPROVER_ENABLED"
GATES = [
    {"metric": "error_rate", "warn": 0.05, "critical": 0.10, "min_samples": 100, "window": "60s"},
    {"metric": "latency_ratio", "warn": 1.2, "critical": 1.5, "min_samples": 100},
    {"metric": "memory_mb", "warn": 75, "critical": 100},
]
STAGES = [
    {"percent": 10, "bake": "3d", "min_samples": 1000},
    {"percent": 50, "bake": "2d", "min_samples": 5000},
    {"percent": 100, "bake": "1d", "min_samples": 5000},
]
OTHERS = {
    "SKILL_CACHE_V2": ("rolling", "Second-generation skill cache"),
    "PDF_SKILL_STREAMING": ("rolling", "Stream PDF pages to the skill as they render"),
    "SEARCH_RERANKER": ("paused", "Cross-encoder reranking of skill search"),
    "NEW_ONBOARDING": ("complete", "Guided onboarding for first-time users"),
    "TOOL_CALL_BATCHING": ("killed", "Batch tool calls within one turn"),
    "DARK_MODE": ("complete", "Dark theme for the console"),
    "PROMPT_CACHE_WARMUP": ("rolling", "Warm the prompt cache at deploy time"),
    "AUDIO_SKILL": ("draft", "Speech-to-text skill"),
    "BILLING_V3": ("draft", "New invoice pipeline"),
}


def seed(redis_url: str) -> None:
    now = time.time()
    clock_at = [now - 5 * 86400]
    client = client_for_url(redis_url)
    settings = Settings(_env_file=None, redis_url=redis_url)  # type: ignore[call-arg]
    services = build_services(settings, redis_client=client, clock=lambda: clock_at[0])
    flags = services.flags
    flags.create(
        KEY,
        actor="ops:maria",
        description="Prompt-improver enhancements in the skill loader",
        stages=STAGES,
        gates=GATES,
        allow=["qa-alice", "qa-bob"],
    )
    flags.advance(KEY, actor="ops:maria", reason="Go for 10% after QA sign-off")
    first = flags.get(KEY).stage_started_at or 0
    clock_at[0] = now - 3 * 86400
    flags.advance(KEY, actor="ops:maria", reason="Go/No-Go: 10% clean for two days")
    second = flags.get(KEY).stage_started_at or 0
    rng = random.Random(9)
    metrics = services.gates.metrics
    at = now - 5 * 86400 + 150
    while at < now:
        epoch, share = (first, 0.1) if at * 1000 < second else (second, 0.5)
        load = 600 + 400 * abs(((at / 3600) % 24) - 12) / 12  # a day's curve
        batch = Batch()
        for arm, part in (("treatment", share), ("control", 1 - share)):
            samples = int(load * part)
            rate = 0.011 if arm == "control" else 0.013 + 0.004 * rng.random()
            tally = batch.tally(KEY, epoch, arm)
            tally.samples, tally.exposures = samples, samples * 3
            tally.errors = sum(rng.random() < rate for _ in range(samples))
            tally.errors_by_type = {"TimeoutError": tally.errors}
            base = 58 if arm == "control" else 60
            tally.latency = {base + rng.randrange(-3, 6): samples // 4 for _ in range(4)}
        batch.memory_mb[(KEY, epoch)] = 24 + 6 * rng.random()
        metrics.flush(batch, now=at, process="skill-loader-1")
        at += 300
    clock_at[0] = now
    flags.record_status(
        KEY,
        "awaiting_approval",
        "every gate passes, bake done and 5,000 samples in: waiting for an operator's Go",
    )
    for name, (state, description) in OTHERS.items():
        clock_at[0] = now - 3 * 3600
        flags.create(name, actor="ops:li", description=description, stages=STAGES, gates=GATES)
        if state == "draft":
            continue
        flags.advance(name, actor="ops:li")
        epoch = flags.get(name).stage_started_at or 0
        bad = name == "TOOL_CALL_BATCHING"
        for step in range(36):
            batch = Batch()
            tally = batch.tally(name, epoch, "treatment")
            tally.samples = 80 + rng.randrange(40)
            rate = 0.02 + (0.12 * step / 36 if bad else 0.01 * rng.random())
            tally.errors = int(tally.samples * rate)
            tally.latency = {60: tally.samples}
            metrics.flush(batch, now=now - 3 * 3600 + step * 300 + 60, process="p")
        clock_at[0] = now
        if state == "paused":
            flags.pause(name, actor="ops:li", reason="waiting for the search team")
        elif state == "complete":
            for _ in STAGES:
                flags.advance(name, actor="ops:li")
        elif state == "killed":
            flags.kill(
                name,
                reason="error_rate 13.1% (lower bound 11.2%) ≥ critical 10% over 1,204 samples",
                actor="controller",
            )
        else:
            flags.record_status(name, "hold", "baking: 1h 12m left")
    services.close()


def main() -> None:
    DOCS.mkdir(exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="rollout-shots-") as tmp,
        serve(Path(tmp), controller=False) as stack,
    ):
        seed(stack.redis_url)
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1360, "height": 820})
            sign_in(page, stack.base, ADMIN_TOKEN)
            page.wait_for_function(
                "() => document.querySelectorAll('td.trend[data-drawn]').length >= 10"
            )
            page.screenshot(path=str(DOCS / "dashboard-list.png"))
            page.set_viewport_size({"width": 1360, "height": 1500})
            page.goto(f"{stack.base}/flags/{KEY}")
            page.wait_for_function(
                "() => [...document.querySelectorAll('figure[data-chart]')].length >= 3 && "
                "[...document.querySelectorAll('figure[data-chart]')]"
                ".every((f) => Number(f.dataset.points) > 0)"
            )
            page.screenshot(path=str(DOCS / "dashboard-flag.png"), full_page=True)
    print(f"wrote {DOCS / 'dashboard-list.png'} and {DOCS / 'dashboard-flag.png'}")


if __name__ == "__main__":
    main()
