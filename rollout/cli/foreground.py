"""A long-running loop (controller, notifier) in the foreground, stopped by SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Protocol

import click


class Loop(Protocol):
    stop: threading.Event

    def run(self) -> None: ...


def run_in_foreground(loop: Loop, banner: str) -> None:
    """Log at INFO, let SIGTERM/SIGINT finish the current pass, announce, and run."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    def stop(*_: object) -> None:
        loop.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo(banner, err=True)
    loop.run()
