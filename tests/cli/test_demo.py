"""``rollout demo`` (cli/demo.py): the kill endings, the notify URL, refused regressions."""

from __future__ import annotations

import pytest

from rollout.storage.redis_process import RedisProcess
from tests.cli.conftest import Cli


@pytest.mark.slow
def test_demo_kill_ending(redis_server_flushed: RedisProcess) -> None:
    cli = Cli(None)
    result = cli(
        "--redis-url", redis_server_flushed.url, "demo", "--inject-errors", "0.3", "--workers", "2"
    )
    assert result.exit_code == 0, result.output
    assert "KILLED by controller: error_rate" in result.stdout
    assert "users still getting the improver: 0 of 10000 answers" in result.stdout
    # How to watch it: a serve on the demo's own key prefix, and the flag's page.
    assert "ROLLOUT_KEY_PREFIX=rollout-demo rollout serve" in result.stdout
    assert "/flags/PROMPT_IMPROVER_ENABLED" in result.stdout


@pytest.mark.slow
def test_demo_business_value_kill_ending(redis_server_flushed: RedisProcess) -> None:
    cli = Cli(None)
    result = cli(
        "--redis-url", redis_server_flushed.url, "demo", "--inject-regression",
        "improvement_delta=-0.2", "--workers", "2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "KILLED by controller: value:improvement_delta relative change -" in result.stdout
    assert "treatment mean 0.8" in result.stdout or "treatment mean 0.7" in result.stdout


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ("cost=-0.2", "records only improvement_delta"),
        ("improvement_delta=lots", "'lots' is not a number"),
        ("improvement_delta=-3", "not a relative change from -1 to 1"),
    ],
)
def test_demo_refuses_a_regression_it_cannot_inject(given: str, words: str) -> None:
    result = Cli(None)("demo", "--inject-regression", given)
    assert result.exit_code != 0 and words in result.output


@pytest.mark.slow
def test_demo_delivers_the_kill_to_the_notify_url(redis_server_flushed: RedisProcess) -> None:
    from tests.notify.receiver import serving

    cli = Cli(None)
    with serving() as receiver:
        result = cli(
            "--redis-url", redis_server_flushed.url, "demo", "--inject-errors", "0.3",
            "--workers", "2", "--notify-url", receiver.url,
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "KILLED by controller" in result.stdout
    assert "s3cr3t-path" not in result.output and "notified http://127.0.0.1/…" in result.stdout
    kinds = [r.json["type"] for r in receiver.accepted]
    assert kinds[0] == "create" and kinds[-1] == "kill", kinds
    kill = receiver.accepted[-1].json
    assert kill["flag"] == "PROMPT_IMPROVER_ENABLED" and kill["actor"] == "controller"
    assert kill["readings"] and kill["readings"][0]["verdict"] == "fail"
