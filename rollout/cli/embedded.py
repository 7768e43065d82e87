"""``rollout embedded status|stop``: the local redis-server of the embedded default (DESIGN §5).

These commands never start a server and never build the services: asking for the status must
not be what brings the server up.
"""

from __future__ import annotations

import click

from rollout.cli.context import CliState, json_option, pass_state
from rollout.core.redis_url import mask_url
from rollout.storage.embedded import EmbeddedRedis


def _note_external(state: CliState) -> None:
    url = state.settings().redis_url
    if url:
        click.echo(
            f"note: a Redis URL is set (--redis-url / ROLLOUT_REDIS_URL: {mask_url(url)}); "
            "the CLI uses that server, not the embedded one",
            err=True,
        )


@click.group("embedded")
def embedded() -> None:
    """The embedded Redis server under ROLLOUT_DATA_DIR."""


@embedded.command("status")
@json_option
@pass_state
def status(state: CliState) -> None:
    """Is the embedded server running, and where are its files."""
    info = EmbeddedRedis(state.settings().data_dir).status()
    _note_external(state)
    head = f"running (pid {info['pid']}) at {info['url']}" if info["running"] else "not running"
    human = "\n".join(
        [f"embedded Redis: {head}"]
        + [f"  {name:<8}  {info[name]}" for name in ("data_dir", "socket", "aof", "log")]
    )
    state.emit(info, human)


@embedded.command("stop")
@json_option
@pass_state
def stop(state: CliState) -> None:
    """Stop the embedded server (the next rollout command starts it again)."""
    server = EmbeddedRedis(state.settings().data_dir)
    _note_external(state)
    stopped = server.stop()
    where = server.data_dir
    human = (
        f"stopped the embedded Redis under {where}"
        if stopped
        else (f"no embedded Redis was running under {where}")
    )
    state.emit({"stopped": stopped, "data_dir": str(where)}, human)
