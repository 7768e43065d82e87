"""``rollout notifier`` (the delivery loop) and ``rollout notify list|test``."""

from __future__ import annotations

import os
import time

import click

from rollout.cli import render
from rollout.cli.context import CliState, json_option, pass_state
from rollout.cli.errors import CliError, usage
from rollout.cli.foreground import run_in_foreground
from rollout.core.destinations import mask_url, resolve
from rollout.core.errors import ValidationError
from rollout.core.events import Event
from rollout.core.units import render_instant, to_ms
from rollout.notify.http import post
from rollout.wiring import build_notifier


@click.command("notifier")
@click.option("--once", is_flag=True, help="One pass (read, deliver what is due), then exit.")
@pass_state
def notifier(state: CliState, once: bool) -> None:
    """Deliver events to the [notify.NAME] destinations: at least once, in order per flag.

    One notifier leads at a time (a Redis lock with a TTL); others wait to take over. URLs
    and secrets come from this process's environment.
    """
    loop = build_notifier(state.services)
    try:
        destinations = loop.check()
    except ValidationError as error:
        raise usage(str(error)) from None
    if once:
        if not loop.lock.acquire():
            raise CliError("another notifier holds the lock; nothing done")
        try:
            click.echo(f"delivered {loop.tick()} event(s)")
        finally:
            loop.lock.release()
        return
    run_in_foreground(loop, f"notifier {loop.lock.owner}: {len(destinations)} destination(s)")


@click.group("notify")
def notify() -> None:
    """Notification destinations: list them, send one a test event."""


@notify.command("list")
@json_option
@pass_state
def list_destinations(state: CliState) -> None:
    """Destinations with their events, flags, last success, last error and backlog."""
    services = state.services
    rows, data = [], []
    for d in services.notify.destinations():
        stats = services.notify.stats(d.name)
        url = os.environ.get(d.url_env)
        signed = "unsigned" if d.secret_env is None else f"signed ({d.secret_env})"
        item = {
            **d.config(),
            "name": d.name,
            "url": mask_url(url) if url else None,
            "signed": d.secret_env is not None,
            **stats,
        }
        data.append(item)
        rows.append((
            d.name, d.format, ",".join(d.events) if len(d.events) < 14 else "all",
            ",".join(d.flags), signed, stats["delivered"], stats["backlog"],
            stats["last_success"], stats["last_error"],
        ))  # fmt: skip
    headers = ("NAME", "FORMAT", "EVENTS", "FLAGS", "SIGNING", "SENT", "BACKLOG",
               "LAST SUCCESS", "LAST ERROR")  # fmt: skip
    state.emit(data, render.table(headers, rows) if rows else "no destinations")


@notify.command("test")
@click.argument("name")
@json_option
@pass_state
def test(state: CliState, name: str) -> None:
    """Send NAME a test event now, from this shell's environment, and print the answer."""
    destination = state.services.notify.get(name)
    try:
        url, secret = resolve(destination, os.environ)
    except ValidationError as error:
        raise usage(str(error)) from None
    now = time.time()
    event = Event(
        id=f"test-{to_ms(now)}.{name}",
        type="test",
        at=render_instant(to_ms(now)) or "",
        flag="-",
        actor=state.actor,
        reason="a test event from rollout notify test",
        before=None,
        after=None,
    )
    answer = post(url, event, destination.format, secret)
    data = {"ok": answer.ok, "status": answer.status, "detail": answer.detail,
            "body": answer.body, "url": mask_url(url)}  # fmt: skip
    human = f"{mask_url(url)}: {answer.detail}" + (f"\n{answer.body}" if answer.body else "")
    state.emit(data, human)
    if not answer.ok:
        raise CliError(f"{name}: the receiver answered {answer.detail}")
