"""``rollout controller``: the controller loop in the foreground, or one tick of it."""

from __future__ import annotations

import click

from rollout.cli.context import CliState, pass_state
from rollout.cli.errors import CliError, usage
from rollout.cli.foreground import run_in_foreground
from rollout.core.defaults import CONTROLLER_INTERVAL
from rollout.wiring import build_controller


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
    help="Seconds between ticks; fractions allowed "
    f"(default ROLLOUT_CONTROLLER_INTERVAL, {CONTROLLER_INTERVAL:g}).",
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
    run_in_foreground(loop, f"controller {loop.lock.owner}: ticking every {loop.interval:g}s")
