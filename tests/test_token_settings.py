"""A malformed ROLLOUT_ADMIN_TOKENS / ROLLOUT_READ_TOKENS is refused without echoing the entry.

An entry that fails to parse may be all secret (a token pasted without its ``name:``), so
neither the settings error nor anything the CLI prints may contain any of it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from rollout.cli.main import cli
from rollout.core.errors import ValidationError
from rollout.settings import load_settings

GOOD = "alice:g00dqzxv0123456789abcdef"
# Each value hides its secret text behind a marker that no message could contain by chance.
MALFORMED = {
    "a token without its name": ("S3CRETnoName0123456789", "entry 1"),
    "a token too short": ("alice:S3CRETshrt", "entry 1"),
    "a name with a space": ("al ice:S3CRETqzxw0123456789", "entry 1"),
    "a token with a space": ("alice:S3CRETqz xv 0123456789kw", "entry 1"),
    "a token too long": ("alice:S3CRET" + "x" * 600, "entry 1"),
    "a name too long": ("n" * 65 + ":S3CRETlongname0123456789", "entry 1"),
    "a bad second entry": (f"{GOOD},S3CRETsecond0123456789", "entry 2"),
}
MARKER = "S3CRET"
CASES = [pytest.param(value, entry, id=name) for name, (value, entry) in MALFORMED.items()]


def assert_secret_free(text: str, value: str) -> None:
    """No five characters in a row of the value: not the entry, not a piece of it."""
    assert MARKER[:3] not in text, text
    leaked = {value[i : i + 5] for i in range(len(value) - 4)} & {
        text[i : i + 5] for i in range(len(text) - 4)
    }
    assert not leaked, (leaked, text)


@pytest.mark.parametrize("variable", ["ROLLOUT_ADMIN_TOKENS", "ROLLOUT_READ_TOKENS"])
@pytest.mark.parametrize(("value", "entry"), CASES)
def test_the_settings_error_names_the_entry_not_its_text(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, entry: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith(f"invalid setting {variable}: ") and entry in message
    assert_secret_free(message, value)
    # pydantic's own error quotes the input; even a traceback must not chain it in.
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


@pytest.mark.parametrize("command", [["list"], ["serve"], ["controller"], ["embedded", "status"]])
@pytest.mark.parametrize(("value", "entry"), CASES)
def test_cli_commands_refuse_it_in_one_line_without_the_secret(
    command: list[str], value: str, entry: str, dead_redis_url: str
) -> None:
    env = {"ROLLOUT_ADMIN_TOKENS": value, "ROLLOUT_REDIS_URL": dead_redis_url}
    result = CliRunner(env=env).invoke(cli, command)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: invalid setting ROLLOUT_ADMIN_TOKENS: ")
    assert result.stderr.count("\n") == 1 and entry in result.stderr
    assert_secret_free(result.output, value)


@pytest.mark.slow
def test_serve_as_a_process_never_prints_the_secret(tmp_path: Path, dead_redis_url: str) -> None:
    """The real entry point, so logging set up at import would show here too."""
    value, _entry = MALFORMED["a bad second entry"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    env.update(
        ROLLOUT_ADMIN_TOKENS=value,
        ROLLOUT_REDIS_URL=dead_redis_url,  # if the check failed, serve would still start nothing
        ROLLOUT_DATA_DIR=str(tmp_path / "data"),
    )
    done = subprocess.run(
        [sys.executable, "-m", "rollout", "serve", "--port", "1"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == "" and done.stderr.count("\n") == 1
    assert done.stderr.startswith("error: invalid setting ROLLOUT_ADMIN_TOKENS: ")
    assert "entry 2 is not name:token" in done.stderr
    assert_secret_free(done.stderr, value)
    assert not (tmp_path / "data").exists()  # refused before anything was set up
