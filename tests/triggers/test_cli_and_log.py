"""``rollout trigger`` commands, and the access log that never shows a trigger's secret."""

from __future__ import annotations

import datetime
import io
import logging
from typing import Any

from gunicorn.config import Config

from rollout.cli.accesslog import RedactingLogger
from rollout.services.container import Services
from tests.cli.conftest import ACTOR, Cli


def test_create_list_delete(real_services: Services) -> None:
    run = Cli(real_services)
    real_services.flags.create("F", actor="seed")
    created = run.json("trigger", "create", "F", "--name", "pager")
    assert created["url"].startswith(f"/hooks/triggers/{created['id']}/")
    secret = created["url"].rsplit("/", 1)[1]
    human = run.ok("trigger", "list").stdout
    assert created["id"] in human and "pager" in human and secret not in human
    listed = run.json("trigger", "list", "F")
    assert [t["id"] for t in listed] == [created["id"]] and "url" not in listed[0]
    assert real_services.flags.audit("F", 1)[0]["actor"] == ACTOR
    before = len(real_services.flags.audit("F", 10_000))
    run.ok("trigger", "delete", created["id"])
    assert run.json("trigger", "list") == []
    assert len(real_services.flags.audit("F", 10_000)) == before + 1  # audited exactly once
    assert real_services.flags.audit("F", 1)[0]["action"] == "trigger_delete"
    assert "no such trigger" in run.fails(1, "trigger", "delete", created["id"])
    assert "16 hex" in run.fails(2, "trigger", "delete", "nope")
    assert "does not exist" in run.fails(1, "trigger", "create", "NOPE")


def _access_line(path: str) -> str:
    config = Config()
    config.set("accesslog", "-")
    logger = RedactingLogger(config)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logger.access_log.handlers = [handler]

    class Resp:
        status = "200 OK"
        sent = 10
        headers: tuple[tuple[str, str], ...] = ()

    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": path,
        "PATH_INFO": path,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "QUERY_STRING": "",
        "REMOTE_ADDR": "127.0.0.1",
    }
    logger.access(Resp(), [], environ, datetime.timedelta(milliseconds=3))
    return out.getvalue()


def test_access_log_redacts_trigger_paths() -> None:
    line = _access_line("/hooks/triggers/0123456789abcdef/s3cr3t-s3cr3t")
    assert "/hooks/triggers/[redacted]" in line
    assert "s3cr3t" not in line and "0123456789abcdef" not in line
    assert "/api/v1/flags" in _access_line("/api/v1/flags")
