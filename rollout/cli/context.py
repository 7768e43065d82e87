"""Per-invocation state of the CLI and the options every command shares.

Services are built lazily, in ``CliState.services`` only, so ``--help``, usage errors and shell
completion never need Redis. Tests inject ready services through Click's ``obj``: pass a
``Services`` (used as is) or a factory ``(redis_url) -> Services`` to ``main(obj=...)`` or
``CliRunner.invoke(cli, args, obj=...)``.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click
from click.shell_completion import CompletionItem

from rollout.core.errors import ValidationError
from rollout.core.model import Flag
from rollout.core.schema import flag_to_dict
from rollout.core.units import parse_percent
from rollout.services.container import Services
from rollout.settings import Settings, load_settings
from rollout.wiring import build_services

ServicesFactory = Callable[[str | None], Services]
F = TypeVar("F", bound=Callable[..., Any])


def build_default(redis_url: str | None) -> Services:
    # The CLI is allowed to start the embedded server (DESIGN §5): it is an operator's tool.
    return build_services(load_settings(redis_url=redis_url))


def default_actor() -> str:
    user = os.environ.get("USER") or os.environ.get("LOGNAME")
    if not user:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry, e.g. an arbitrary uid in a container
            user = "unknown"
    return f"cli:{user}"


@dataclass
class CliState:
    actor: str
    redis_url: str | None = None
    json: bool = False
    factory: ServicesFactory = build_default
    injected: Services | None = None
    _built: Services | None = field(default=None, repr=False)

    @property
    def services(self) -> Services:
        if self.injected is not None:
            return self.injected
        if self._built is None:
            self._built = self.factory(self.redis_url)
        return self._built

    def settings(self) -> Settings:
        """Settings without connecting anywhere (for ``embedded``, which must not start Redis)."""
        if self.injected is not None:
            return self.injected.settings
        return load_settings(redis_url=self.redis_url)

    def close(self) -> None:
        used = self.injected if self.injected is not None else self._built
        if used is not None and used.flags.replication_pending():
            click.echo("warning: not yet replicated", err=True)
        # Only what we built: injected services belong to the caller (a test fixture).
        if self._built is not None:
            self._built.close()
            self._built = None

    # -- output --------------------------------------------------------------------------

    def emit_json(self, data: Any) -> None:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))

    def emit(self, data: Any, human: str) -> None:
        """``data`` as JSON with ``--json``, else the human text."""
        if self.json:
            self.emit_json(data)
        else:
            click.echo(human)

    def emit_flag(self, flag: Flag, human: str) -> None:
        self.emit(flag_to_dict(flag), human)


pass_state = click.make_pass_decorator(CliState)


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    state = ctx.find_object(CliState)
    if value and state is not None:  # None during shell completion, where nothing runs
        state.json = True


def json_option(fn: F) -> F:
    """``--json`` on the command itself (``rollout list --json``), as well as globally."""
    return click.option(
        "--json",
        is_flag=True,
        expose_value=False,
        callback=_set_json,
        help="Print JSON (the field names of the API) instead of text.",
    )(fn)


def reason_option(fn: F) -> F:
    return click.option(
        "--reason", metavar="TEXT", help="Why; recorded in the audit entry of this change."
    )(fn)


def complete_keys(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[Any]:
    """Flag keys for shell completion; never starts a server, and silent when Redis is away."""
    root = ctx.find_root()
    try:
        if isinstance(root.obj, Services):
            keys = [flag.key for flag in root.obj.flags.list_flags()]
        else:
            settings = load_settings(redis_url=root.params.get("redis_url"))
            services = build_services(settings, start_embedded=False)
            try:
                keys = [flag.key for flag in services.flags.list_flags()]
            finally:
                services.close()
    except Exception:  # completion must never print an error into the shell
        return []
    return [CompletionItem(key) for key in keys if key.startswith(incomplete)]


def key_argument(fn: F) -> F:
    return click.argument("key", shell_complete=complete_keys)(fn)


class PercentType(click.ParamType[str]):
    """A percent checked by core's ``parse_percent`` (0-100, two decimals, never rounded).

    The text is passed on unchanged, so the service parses the very same string; never float().
    """

    name = "percent"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            parse_percent(str(value), "percent")
        except ValidationError as error:
            self.fail(error.message.removeprefix("percent: "), param, ctx)
        return str(value)
