"""The trigger suite's storage tests run against every real topology: single, Sentinel,
Cluster (``real_redis``, and with it ``real_services``); plus the API's app whose Redis is down."""

from tests.api.conftest import down_app  # noqa: F401 - a fixture, used by name
from tests.topology_fixtures import real_redis as real_redis  # fixtures, offered here
from tests.topology_fixtures import topology as topology
