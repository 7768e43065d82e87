"""The WSGI entry point gunicorn loads (``rollout.wsgi:app``); settings from ROLLOUT_*.

Beside the composition root, not in ``api/``: building the services is wiring's job, and the
API only receives them.
"""

from __future__ import annotations

from rollout.api.app import create_app
from rollout.wiring import build_services

app = create_app(build_services())
