"""Driver errors become ``StorageError(cause)`` here, and nowhere else.

redis-py's cluster client raises some of its own outside ``RedisError``: every node gone
("Redis Cluster cannot be connected"), a slot map the nodes disagree on or that leaves slots
uncovered (mid-failover), ``SlotNotCoveredError``. They are outages like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

import redis

from rollout.core.errors import StorageError

P = ParamSpec("P")
T = TypeVar("T")


@contextmanager
def wrapped() -> Iterator[None]:
    try:
        yield
    except redis.exceptions.WatchError:
        raise  # a lost compare-and-set, handled by the caller; not an outage
    except (
        redis.exceptions.RedisError,
        redis.exceptions.RedisClusterException,
        OSError,
    ) as error:
        raise StorageError(error) from error


def storage_call(fn: Callable[P, T]) -> Callable[P, T]:
    @wraps(fn)
    def inner(*args: P.args, **kwargs: P.kwargs) -> T:
        with wrapped():
            return fn(*args, **kwargs)

    return inner
