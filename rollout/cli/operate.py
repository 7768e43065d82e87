"""The controller loop and the live terminal view: ``rollout controller`` and ``rollout watch``."""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

import click

from rollout.cli import render
from rollout.cli.context import CliState, key_argument, pass_state
from rollout.cli.errors import CliError, usage
from rollout.wiring import build_controller


def _finite_seconds(value: float) -> float:
    if value != value:  # NaN slips through FloatRange: every comparison with it is False
        raise usage("--interval must be a number of seconds")
    return value


def _interval(value: float | None) -> float | None:
    if value is not None and not 0.01 <= value <= 3600:  # also refuses NaN
        raise usage("--interval must be from 0.01 to 3600 seconds")
    return value


@click.command("controller")
@click.option(
    "--interval",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Seconds between ticks; fractions allowed (default ROLLOUT_CONTROLLER_INTERVAL, 1).",
)
@click.option("--once", is_flag=True, help="One tick, if no other controller leads, then exit.")
@pass_state
def controller(state: CliState, interval: float | None, once: bool) -> None:
    """Run the controller: read the gates, then kill, hold or advance each serving flag.

    One controller leads at a time (a Redis lock with a TTL); others wait to take over.
    SIGTERM or Ctrl-C finishes the current tick and releases the lock.
    """
    loop = build_controller(state.services, interval=_interval(interval))
    if once:
        outcomes = loop.run_once()
        if outcomes is None:
            raise CliError("another controller holds the lock; nothing done")
        for outcome in outcomes:
            click.echo(f"{outcome.key}: {outcome.decision.action}: {outcome.decision.why}")
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = lambda *_: loop.stop.set()  # noqa: E731 - a signal handler
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo(f"controller {loop.lock.owner}: ticking every {loop.interval:g}s", err=True)
    loop.run()


def watch_frame(state: CliState, key: str) -> str:
    services = state.services
    flag = services.flags.get(key)
    lines = [
        f"{flag.key}  {render.describe(flag)}",
        f"status: {render.status_text(flag)}",
    ]
    if flag.serving and flag.gates:
        report: dict[str, Any] = services.gates.report(flag)
        arms = report["arms"]
        rows = []
        for arm in ("treatment", "control"):
            figures = arms[arm]
            rate = figures["error_rate"]
            rows.append(
                (
                    arm,
                    figures["exposures"],
                    figures["samples"],
                    figures["errors"],
                    "-" if rate is None else f"{rate:.2%}",
                    "-" if figures["p95_ms"] is None else f"{figures['p95_ms']:.1f}ms",
                )
            )
        lines += [
            "",
            render.table(("arm", "exposures", "samples", "errors", "error rate", "p95"), rows),
            "",
            render.readings(report["gates"]),
        ]
    return "\n".join(lines)


@click.command("watch")
@key_argument
@click.option(
    "--interval",
    type=click.FloatRange(0.1, 60),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds between refreshes.",
    callback=lambda _ctx, _param, value: _finite_seconds(value),
)
@click.option("--count", type=click.IntRange(1), default=None, help="Stop after N frames.")
@pass_state
def watch(state: CliState, key: str, interval: float, count: int | None) -> None:
    """A live view of KEY: state, stage, percent, gate readings and status. Ctrl-C stops."""
    frames = 0
    try:
        while count is None or frames < count:
            frame = watch_frame(state, key)
            stamp = time.strftime("%H:%M:%S")
            if count is None:
                click.clear()
            click.echo(f"rollout watch {key}  {stamp}  (Ctrl-C to stop)\n{frame}")
            frames += 1
            if count is None or frames < count:
                time.sleep(interval)
    except KeyboardInterrupt:
        pass
