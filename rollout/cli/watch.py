"""``rollout watch``: a live terminal view of one flag, redrawn every interval."""

from __future__ import annotations

import time
from typing import Any

import click

from rollout.cli import render
from rollout.cli.context import CliState, key_argument, pass_state
from rollout.cli.errors import usage
from rollout.core.transitions import serving


def _finite_seconds(value: float) -> float:
    if value != value:  # NaN slips through FloatRange: every comparison with it is False
        raise usage("--interval must be a number of seconds")
    return value


def watch_frame(state: CliState, key: str) -> str:
    services = state.services
    flag = services.flags.get(key)
    lines = [
        f"{flag.key}  {render.describe(flag)}",
        f"status: {render.status_text(flag)}",
    ]
    if serving(flag) and flag.gates:
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
