"""The API's fixtures the trigger tests share (an app whose Redis is down)."""

from tests.api.conftest import down_app  # noqa: F401 - a fixture, used by name
