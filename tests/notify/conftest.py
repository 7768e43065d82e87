"""The notify suite's storage tests run against every real topology: single, Sentinel, Cluster.

``real_redis`` (and with it the root ``real_services``) is parametrized over the session-shared
groups of ``tests/redis_groups.py``, flushed before each test; the pure tests take neither.
"""

from tests.topology_fixtures import real_redis as real_redis  # fixtures, offered here
from tests.topology_fixtures import real_url as real_url
from tests.topology_fixtures import topology as topology
