"""Input and output files: errors name the file (and the line, for a parse error)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from rollout.cli.errors import CliError, usage

# Exists, not a directory; "-" reads standard input.
INPUT_FILE = click.Path(exists=True, dir_okay=False, allow_dash=True)


def read_text(path: str) -> str:
    """The file's text; an unreadable input file is a bad argument (exit 2)."""
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as error:
        raise usage(f"cannot read {path}: {error.strerror or error}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise usage(f"{path}: not UTF-8 text (byte {error.start})") from None


def load_toml(path: str) -> dict[str, Any]:
    # Decimals, not floats: a percent written 12.50000000000000001 must be refused, not
    # silently read as 12.5.
    try:
        return tomllib.loads(read_text(path), parse_float=Decimal)
    except tomllib.TOMLDecodeError as error:
        # The message already ends with "(at line L, column C)".
        raise usage(f"{path}: invalid TOML: {error}") from None
    except (RecursionError, ValueError) as error:
        raise usage(f"{path}: invalid TOML: {_short(error)}") from None


def load_json(path: str) -> Any:
    try:
        return json.loads(read_text(path), parse_float=Decimal)
    except json.JSONDecodeError as error:
        raise usage(
            f"{path}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    except (RecursionError, ValueError) as error:
        # Nesting too deep, or an integer of thousands of digits.
        raise usage(f"{path}: invalid JSON: {_short(error)}") from None


def _short(error: Exception) -> str:
    return "nested too deeply" if isinstance(error, RecursionError) else str(error)[:120]


def write_atomically(path: str, text: str) -> None:
    """Replace ``path`` in one step, so a crash never leaves half a backup behind.

    The file is created 0600 (mkstemp): snapshots name users on allow and deny lists.
    """
    target = Path(path)
    if target.is_symlink() or (target.exists() and not target.is_file()):
        # Replacing a link, a FIFO or a device with a regular file would surprise (as root,
        # /dev/full becomes a file): write only to plain files.
        raise usage(f"{path}: not a regular file; choose a plain file path for --out")
    try:
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as error:
        raise CliError(f"cannot write {path}: {error.strerror or error}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except OSError as error:
        Path(temp).unlink(missing_ok=True)
        raise CliError(f"cannot write {path}: {error.strerror or error}") from None
