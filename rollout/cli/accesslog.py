"""gunicorn's access log without trigger secrets: ``/hooks/triggers/ID/SECRET`` is logged as
``/hooks/triggers/[redacted]`` (``serve --access-log`` passes this class as ``--logger-class``).
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from rollout.core.triggers import HOOK_PREFIX

REDACTED = f"{HOOK_PREFIX}/[redacted]"
_URI_KEYS = ("RAW_URI", "PATH_INFO", "REQUEST_URI", "SCRIPT_NAME", "QUERY_STRING")


def redact(value: Any) -> Any:
    if isinstance(value, str) and HOOK_PREFIX in value:
        return REDACTED
    return value


class RedactingLogger(Logger):  # type: ignore[misc]
    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> Any:
        path = str(environ.get("RAW_URI", "")) + str(environ.get("PATH_INFO", ""))
        if HOOK_PREFIX in path:
            environ = {k: redact(v) if k in _URI_KEYS else v for k, v in environ.items()}
        return super().atoms(resp, req, environ, request_time)
