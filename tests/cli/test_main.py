"""Global behaviour: help without Redis, lazy services, one-line errors, completion."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from rollout.cli.main import cli
from rollout.services.container import Services
from rollout.storage.redis_process import RedisProcess
from tests.cli.conftest import ACTOR, USER, Cli, assert_one_line_error

ROLLOUT = Path(sys.executable).with_name("rollout")


def no_services() -> Cli:
    """The CLI as operators run it: services built by the default factory, from settings."""

    def refuse(redis_url: str | None) -> Services:
        raise AssertionError("no command here may build the services")

    return Cli(refuse)


def test_help_needs_no_redis() -> None:
    run = no_services()
    assert "Usage: rollout" in run.ok("--help").stdout
    for name, command in cli.commands.items():
        assert "Usage:" in run.ok(name, "--help").stdout
        for sub in getattr(command, "commands", {}):
            run.ok(name, sub, "--help")


def test_usage_errors_are_one_line_and_never_build_services() -> None:
    run = no_services()
    assert "No such command" in run.fails(2, "frobnicate")
    assert "No such option" in run.fails(2, "list", "--frob")
    assert "two decimals" in run.fails(2, "set", "F", "1.001")
    assert "--actor" in run.fails(2, "--actor", " ", "list")
    assert "--yes" in run.fails(2, "delete", "F")


def test_factory_receives_the_redis_url(services: Services) -> None:
    seen: list[str | None] = []

    def factory(redis_url: str | None) -> Services:
        seen.append(redis_url)
        return services

    run = Cli(factory)
    run.ok("--redis-url", "redis://example:1/0", "list")
    result = run("list", env={"ROLLOUT_REDIS_URL": "redis://from-env:2/0"})
    assert result.exit_code == 0, result.output
    assert seen == ["redis://example:1/0", "redis://from-env:2/0"]


def test_default_actor_and_override(run: Cli, services: Services) -> None:
    run.ok("create", "A")
    run.ok("--actor", "oncall-bob", "create", "B")
    assert services.flags.audit("A")[0]["actor"] == ACTOR == f"cli:{USER}"
    assert services.flags.audit("B")[0]["actor"] == "oncall-bob"


def test_unreachable_redis_is_a_refusal(closed_port: int) -> None:
    run = CliRunner()
    result = run.invoke(cli, ["--redis-url", f"redis://127.0.0.1:{closed_port}/0", "list"])
    assert "storage unavailable" in assert_one_line_error(result, 1)


def test_invalid_setting_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["list"], env={"ROLLOUT_SOCKET_TIMEOUT": "-1"})
    assert "ROLLOUT_SOCKET_TIMEOUT" in assert_one_line_error(result, 2)
    result = CliRunner().invoke(cli, ["--redis-url", "http://nope", "list"])
    assert "ROLLOUT_REDIS_URL" in assert_one_line_error(result, 2)


def test_real_server_through_the_default_factory(redis_server_flushed: RedisProcess) -> None:
    """No injection: settings, wiring and a real redis-server, as in production."""
    runner = CliRunner(env={"ROLLOUT_REDIS_URL": redis_server_flushed.url, "USER": USER})
    for args in (["create", "REAL"], ["set", "REAL", "25"]):
        assert runner.invoke(cli, args).exit_code == 0
    result = runner.invoke(cli, ["show", "REAL", "--json"])
    assert result.exit_code == 0 and '"percent": 25' in result.stdout
    result = runner.invoke(cli, ["audit", "REAL", "--json"])
    assert result.stdout.count(f'"actor": "{ACTOR}"') == 2


def test_shell_completion_of_commands_and_keys(run: Cli, services: Services) -> None:
    services.flags.create("PROMPT_IMPROVER_ENABLED", actor="setup")
    services.flags.create("OTHER", actor="setup")

    def complete(words: str) -> list[str]:
        env = {
            "_ROLLOUT_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        }
        result = run("", env=env)
        assert result.exit_code == 0, result.output
        return [line.split(",", 1)[1] for line in result.stdout.splitlines()]

    assert complete("rollout sh") == ["show"]
    assert complete("rollout show PR") == ["PROMPT_IMPROVER_ENABLED"]
    assert complete("rollout kill ") == ["OTHER", "PROMPT_IMPROVER_ENABLED"]


@pytest.mark.skipif(not ROLLOUT.exists(), reason="the console script is not installed")
def test_console_script_prints_no_traceback(tmp_path: Path, closed_port: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    env["ROLLOUT_DATA_DIR"] = str(tmp_path)
    help_ = subprocess.run([ROLLOUT, "--help"], env=env, capture_output=True, text=True)
    assert help_.returncode == 0 and "Usage: rollout" in help_.stdout and not help_.stderr
    url = f"redis://127.0.0.1:{closed_port}/0"
    error = subprocess.run(
        [ROLLOUT, "--redis-url", url, "show", "F"], env=env, capture_output=True, text=True
    )
    assert error.returncode == 1 and error.stdout == ""
    assert error.stderr.startswith("error: storage unavailable") and error.stderr.count("\n") == 1
    usage = subprocess.run([ROLLOUT, "set", "F", "101"], env=env, capture_output=True, text=True)
    assert usage.returncode == 2 and usage.stderr.count("\n") == 1
    assert "Traceback" not in error.stderr + usage.stderr
    closed = subprocess.Popen(
        [ROLLOUT, "--help"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert closed.stdout is not None and closed.stderr is not None
    closed.stdout.close()  # a reader that went away (`rollout ... | head`) is not an error
    assert closed.wait(timeout=30) == 1 and closed.stderr.read() == b""
    closed.stderr.close()
    script = subprocess.run(
        [ROLLOUT], env={**env, "_ROLLOUT_COMPLETE": "bash_source"}, capture_output=True, text=True
    )
    assert script.returncode == 0 and "_ROLLOUT_COMPLETE=bash_complete" in script.stdout
