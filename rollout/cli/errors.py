"""One-line errors with the exit codes of DESIGN §6, whatever raised them.

Every command runs inside ``translated()``: core errors, OS errors and Click's own usage errors
all become ``error: ...`` on one stderr line, exit 2 for a usage mistake and 1 for a refusal.
Operators script this tool, so a traceback or a multi-line usage dump is never the answer.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import click

from rollout.core.errors import USAGE_ERRORS, RolloutError

EXIT_REFUSED = 1
EXIT_USAGE = 2


class CliError(click.ClickException):
    """A refusal shown as a single ``error: ...`` line (exit 1)."""

    exit_code = EXIT_REFUSED

    def __init__(self, message: str) -> None:
        # Messages may quote user input or driver text; keep them on one line.
        super().__init__(" ".join(str(message).split()))

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", file=file, err=file is None)


class CliUsageError(CliError):
    """A usage mistake (exit 2): bad arguments, an invalid file or setting."""

    exit_code = EXIT_USAGE


def usage(message: str) -> CliError:
    return CliUsageError(message)


def cli_error_for(error: RolloutError) -> CliError:
    return CliUsageError(str(error)) if isinstance(error, USAGE_ERRORS) else CliError(str(error))


def describe_os_error(error: OSError) -> str:
    if error.strerror and error.filename is not None:
        return f"{error.strerror}: {error.filename}"
    return str(error) or type(error).__name__


def _silence_stdout() -> None:
    # Python flushes stdout again at exit; pointing it at /dev/null keeps that flush quiet.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a test runner's buffer)
        pass


@contextmanager
def translated() -> Iterator[None]:
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise  # that one prints the help, which is what the operator needs
    except click.UsageError as error:
        hint = f" (see '{error.ctx.command_path} --help')" if error.ctx is not None else ""
        raise usage(f"{error.format_message()}{hint}") from None
    except (click.ClickException, click.exceptions.Exit, click.Abort):
        raise
    except RolloutError as error:
        raise cli_error_for(error) from None
    except BrokenPipeError:
        # The reader went away (`rollout audit | head`): stop quietly, as cat would.
        _silence_stdout()
        raise click.exceptions.Exit(EXIT_REFUSED) from None
    except OSError as error:
        raise CliError(describe_os_error(error)) from None
    except Exception as error:
        # Last resort: a bug must still not print a traceback at an operator mid-incident.
        raise CliError(f"unexpected {type(error).__name__}: {error}") from None


class RolloutGroup(click.Group):
    """The root group: parsing and every subcommand run under ``translated()``."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        with translated():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with translated():
            return super().invoke(ctx)
