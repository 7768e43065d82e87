"""``rollout demo``: the reference scenario end to end, in about a minute.

A simulated skill loader serves thousands of users through real SDK clients with ``track()``;
the real controller ramps PROMPT_IMPROVER_ENABLED 10% → 50% → 100% on the evidence, or kills
it when the improver breaks (``--inject-errors 0.2``) or when what it is for gets worse
(``--inject-regression improvement_delta=-0.2``: the treatment's mean improvement 20% lower,
judged by the ``value:improvement_delta`` gate). Everything runs against the configured
Redis (the embedded server by default) under its own key prefix, so a real flag of the same
name is never touched.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any

import click

from rollout import RolloutClient
from rollout.cli.context import CliState, pass_state
from rollout.cli.errors import CliError
from rollout.core.destinations import Destination, mask_url
from rollout.core.errors import FlagNotFound, ValidationError
from rollout.core.model import State
from rollout.notify.loop import Notifier
from rollout.services.container import Services
from rollout.settings import load_settings
from rollout.wiring import build_controller, build_notifier, build_services, server_url

KEY = "PROMPT_IMPROVER_ENABLED"
VALUE = "improvement_delta"  # the improvement a prompt got, as a quality score (mean 1, sd 0.5)
DEMO_PLAN: dict[str, Any] = {
    "flags": {
        KEY: {
            "description": "Prompt-improver enhancements in the skill loader (demo plan)",
            "auto_advance": True,
            "allow": ["qa-alice", "qa-bob"],
            "stages": [
                {"percent": 10, "bake": "8s", "min_samples": 300},
                {"percent": 50, "bake": "8s", "min_samples": 600},
                {"percent": 100, "bake": "8s", "min_samples": 600},
            ],
            "gates": [
                {"metric": "error_rate", "warn": 0.05, "critical": 0.10, "min_samples": 100},
                {"metric": "latency_ratio", "warn": 1.2, "critical": 1.5, "min_samples": 100},
                {"metric": "memory_mb", "warn": 75, "critical": 100},
                {
                    "metric": f"value:{VALUE}",
                    "direction": "higher_is_better",
                    "warn": -0.02,
                    "critical": -0.05,
                    "min_samples": 200,
                },
            ],
        }
    }
}
USERS = [f"user-{i}" for i in range(5000)]
NOTIFY_ENV = "ROLLOUT_DEMO_NOTIFY_URL"


class PromptImproverBroke(RuntimeError):
    """What the injected failure looks like to the skill loader."""


def improve(prompt: str, rng: random.Random, inject: float) -> str:
    if rng.random() < inject:
        raise PromptImproverBroke("improver failed on this prompt")
    return prompt.strip().capitalize() + " (improved)"


class SkillLoader(threading.Thread):
    """One application process's worth of traffic: users asking for skills."""

    def __init__(
        self,
        url: str,
        prefix: str,
        seed: int,
        inject: float,
        stop: threading.Event,
        regression: float = 0.0,
    ):
        super().__init__(daemon=True, name=f"skill-loader-{seed}")
        self.client = RolloutClient(url, key_prefix=prefix, flush_interval=0.5, environ={})
        self.rng = random.Random(seed)
        self.inject = inject
        self.regression = regression
        self.stop_event = stop
        self.errors = 0

    def run(self) -> None:
        flag = self.client.flag(KEY)
        while not self.stop_event.is_set():
            for _ in range(20):
                user = self.rng.choice(USERS)
                try:
                    with flag.track(user) as improved:
                        prompt = "load the pdf skill"
                        # Both arms do comparable work, so latency compares like with like.
                        prompt = improve(prompt, self.rng, self.inject) if improved else prompt
                        # What the improvement is for, measured the same way in both arms.
                        scale = 1.0 + self.regression if improved else 1.0
                        flag.observe(user, VALUE, self.rng.gauss(1.0, 0.5) * scale)
                        # Background failures both arms share (the model API having a bad day).
                        if self.rng.random() < 0.01:
                            raise TimeoutError("downstream timeout")
                except (PromptImproverBroke, TimeoutError):
                    self.errors += 1
            time.sleep(0.02)

    def answers_on(self) -> int:
        flag = self.client.flag(KEY)
        return sum(flag.is_enabled(user) for user in USERS)


def _line(services: Services, started: float) -> tuple[str, State]:
    flag = services.flags.get(KEY)
    report = services.gates.report(flag)
    t, c = report["arms"]["treatment"], report["arms"]["control"]

    def rate(arm: dict[str, Any]) -> str:
        return "-" if arm["error_rate"] is None else f"{arm['error_rate']:.1%}"

    stage = "-" if flag.stage is None else f"{flag.stage + 1}/{len(flag.stages)}"
    status = flag.status.why if flag.status else ""
    text = (
        f"[{time.monotonic() - started:5.1f}s] {flag.state:<8} stage {stage:<3} "
        f"{flag.percent_bp / 100:>5g}%  treatment n={t['samples']:<5} err={rate(t):<6} "
        f"control n={c['samples']:<5} err={rate(c):<6} | {status[:90]}"
    )
    return text, flag.state


@click.command("demo")
@click.option(
    "--inject-errors",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    metavar="RATE",
    help="Share of improved prompts that fail (0.2 shows the automatic kill).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(10, 600),
    default=120,
    show_default=True,
    metavar="SECONDS",
    help="Give up after this long.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 16),
    default=4,
    show_default=True,
    help="Simulated skill-loader processes (SDK clients).",
)
@click.option(
    "--inject-regression",
    metavar="NAME=CHANGE",
    default=None,
    help=f"Lower the treatment's mean of a business value by CHANGE relative "
    f"({VALUE}=-0.2 shows a kill on what the improver is for).",
)
@click.option(
    "--notify-url",
    metavar="URL",
    help="Also run a notifier for the demo's flag and POST its events (JSON) to URL.",
)
@pass_state
def demo(
    state: CliState,
    inject_errors: float,
    timeout: float,
    workers: int,
    inject_regression: str | None,
    notify_url: str | None,
) -> None:
    """Watch the reference rollout run itself: ramp to 100%, or kill on errors or values."""
    regression = _regression(inject_regression)
    logging.getLogger("rollout").setLevel(logging.ERROR)  # the demo prints its own story
    base = load_settings(redis_url=state.redis_url).key_prefix
    prefix = f"{base}-demo"
    settings = load_settings(redis_url=state.redis_url, key_prefix=prefix)
    # The simulated application processes connect the way an SDK would: by URL.
    url = server_url(settings)
    services = build_services(settings.model_copy(update={"redis_url": url}))
    try:
        services.flags.delete(KEY, actor="demo", reason="fresh demo")
    except FlagNotFound:
        pass
    notifier = _notifier(services, notify_url) if notify_url else None
    services.apply.apply(DEMO_PLAN, actor="demo", reason="demo plan")
    first_seq = services.flags.audit(KEY, limit=1)[0]["seq"]
    services.flags.advance(KEY, actor="demo", reason="start the rollout")
    click.echo(
        f"PROMPT_IMPROVER_ENABLED: 10% → 50% → 100%, bakes of 8s; gates error_rate 5%/10%, "
        f"latency 1.2x/1.5x, memory 75/100 MB, {VALUE} -2%/-5%. Injected improver failures: "
        f"{inject_errors:.0%}; {VALUE} change in the treatment: {regression:+.0%}."
    )
    click.echo(f"{workers} skill loaders, {len(USERS):,} users; controller ticking every 0.2s.")
    click.echo(watch_hint(prefix) + "\n")
    stop = threading.Event()
    loaders = [
        SkillLoader(url, prefix, seed, inject_errors, stop, regression) for seed in range(workers)
    ]
    loop = build_controller(services, interval=0.2)
    control = threading.Thread(target=loop.run, daemon=True)
    started = time.monotonic()
    for loader in loaders:
        loader.start()
    control.start()
    notifying = None
    if notifier is not None:
        notifying = threading.Thread(target=notifier.run, daemon=True)
        notifying.start()
    final = State.ROLLING
    try:
        while time.monotonic() - started < timeout:
            time.sleep(0.5)
            text, final = _line(services, started)
            click.echo(text)
            if final in (State.COMPLETE, State.KILLED):
                break
    finally:
        stop.set()
        loop.stop.set()
        control.join(5)
        for loader in loaders:
            loader.join(5)
    if notifier is not None and notifying is not None:
        _drain(services, notifier, notifying, notify_url or "")
    _ending(services, loaders, final, first_seq)
    for loader in loaders:
        loader.client.close()
    services.close()


def _regression(text: str | None) -> float:
    """``improvement_delta=-0.2`` -> -0.2; a one-line error for anything else."""
    if text is None:
        return 0.0
    name, _, change = text.partition("=")
    if name != VALUE:
        raise CliError(f"--inject-regression: the demo records only {VALUE}, got {name!r}")
    try:
        value = float(change)
    except ValueError:
        raise CliError(f"--inject-regression: {change!r} is not a number") from None
    if not -1.0 <= value <= 1.0:
        raise CliError(f"--inject-regression: {value:g} is not a relative change from -1 to 1")
    return value


def _ending(services: Services, loaders: list[SkillLoader], final: State, first_seq: int) -> None:
    flag = services.flags.get(KEY)
    click.echo("")
    if final is State.COMPLETE:
        click.echo(f"COMPLETE: the controller advanced {KEY} through every stage on the evidence.")
    elif final is State.KILLED and flag.kill is not None:
        click.echo(f"KILLED by {flag.kill.by}: {flag.kill.reason}")
        # Every simulated process must have heard of the kill: count users still served.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(loader.answers_on() for loader in loaders):
            time.sleep(0.05)
        on = sum(loader.answers_on() for loader in loaders)
        total = len(USERS) * len(loaders)
        click.echo(f"users still getting the improver: {on} of {total} answers → feature off.")
    else:
        raise CliError(f"demo ended with {KEY} {flag.state}: {flag.status}")
    for entry in reversed(services.flags.audit(KEY, limit=10)):
        if entry["seq"] < first_seq:
            continue  # an earlier demo's entries
        click.echo(
            f"  audit {entry['at']}  {entry['actor']:<10} {entry['action']:<8} "
            f"{(entry['reason'] or '')[:80]}"
        )


def watch_hint(prefix: str) -> str:
    """How to watch this demo in the dashboard: a serve of its own, on the demo's key prefix."""
    return (
        "Watch it in the dashboard: in another terminal run\n"
        f"  ROLLOUT_KEY_PREFIX={prefix} rollout serve --port 8081 --no-controller\n"
        f"then open http://127.0.0.1:8081/flags/{KEY} and sign in with the admin token that "
        "serve prints the path of (this demo's own controller drives the flag)."
    )


def _notifier(services: Services, url: str) -> Notifier:
    """A notifier for the demo's flag alone, to ``url`` (never stored in Redis)."""
    destination = Destination(
        "demo", NOTIFY_ENV, flags=(KEY,), created_at=services.notify.server_time_ms()
    )
    notifier = build_notifier(services, environ={NOTIFY_ENV: url}, only={"demo": destination})
    try:
        notifier.check()
    except ValidationError:
        raise CliError("--notify-url must be an http:// or https:// URL") from None
    return notifier


def _drain(services: Services, notifier: Notifier, thread: threading.Thread, url: str) -> None:
    """Wait (bounded) until the last audit entry was read and everything delivered."""
    last = services.flags.audit(KEY, limit=1)[0]["id"]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        worker = notifier.workers.get("demo")
        queue = worker.queues.get(KEY) if worker is not None else None
        read_all = queue is not None and _order(queue.read_to.audit) >= _order(last)
        if worker is not None and read_all and worker.backlog() == 0:
            break
        time.sleep(0.1)
    notifier.stop.set()
    thread.join(10)
    sent = len(notifier.lag)
    click.echo(f"notified {mask_url(url)}: {sent} event(s) delivered")


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
