"""The WSGI entry point gunicorn loads (``rollout.api.wsgi:app``); settings from ROLLOUT_*."""

from __future__ import annotations

from rollout.api.app import create_app

app = create_app()
