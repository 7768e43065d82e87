"""What differs between one server, a Sentinel group and a Cluster, in one place.

Everything else in ``storage/`` talks to "the client"; only a flag write needs more: its script
must run on the node that owns the flag's slot, with ``WAIT`` pipelined behind it on the same
connection (on a Cluster, redis-py would send a bare WAIT to a default node, where it confirms
nothing). ``on_flag_node`` does that, and follows MOVED/ASK, a dead node and a failover by
re-reading the slot map and trying again; the caller's write id keeps the retries from ever
applying twice.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
from redis.cluster import RedisCluster

from rollout.core.defaults import REDIS_BACKOFF_BASE, WRITE_RETRY_SECONDS

# Errors after which the same write, with the same id, may be sent again.
RETRIABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.MovedError,
    redis.exceptions.ReadOnlyError,  # a demoted master, before the client learns the new one
    redis.exceptions.ClusterError,
    redis.exceptions.SlotNotCoveredError,
    OSError,
)
_REPLICA_CACHE_SECONDS = 5.0
SINGLE_RETRY_SECONDS = 0.5


def is_cluster(client: Any) -> bool:
    return isinstance(client, RedisCluster)


def topology_of(client: Any) -> str:
    if is_cluster(client):
        return "cluster"
    pool = getattr(client, "connection_pool", None)
    return "sentinel" if hasattr(pool, "service_name") else "single"


def write_retry_seconds(client: Any) -> float:
    """How long a write keeps trying: through a failover where one can happen, else briefly."""
    return WRITE_RETRY_SECONDS if topology_of(client) != "single" else SINGLE_RETRY_SECONDS


def refresh(client: Any) -> None:
    """Forget what we knew of the layout: the next call asks the cluster (or sentinels)."""
    if is_cluster(client):
        try:
            client.nodes_manager.initialize()
        except Exception:  # no node answers yet; the next attempt tries again
            pass
    else:
        pool = getattr(client, "connection_pool", None)
        if pool is not None and hasattr(pool, "service_name"):
            pool.disconnect()  # a Sentinel pool asks for the master again on reconnect


def node_for(client: Any, key: str) -> Any:
    """A plain client of the node that owns ``key``'s slot (the client itself off a Cluster)."""
    if not is_cluster(client):
        return client
    return client.get_redis_connection(client.get_node_from_key(key))


def node_at(client: Any, host: str, port: int) -> Any:
    node = client.get_node(host=host, port=port)
    if node is None:
        client.nodes_manager.initialize()
        node = client.get_node(host=host, port=port)
    if node is None:
        raise redis.exceptions.ClusterError(f"no node {host}:{port} in the slot map")
    return client.get_redis_connection(node)


T = TypeVar("T")


def through_failover(
    client: Any, call: Callable[[], T], *, sleep: Callable[[float], None] = time.sleep
) -> T:
    """``call()``, tried again after a lost connection or a redirection until the topology's
    write deadline (seconds on a Sentinel group or a Cluster, a moment on one server)."""
    deadline = time.monotonic() + write_retry_seconds(client)
    attempt = 0
    while True:
        try:
            return call()
        except RETRIABLE:
            attempt += 1
            pause = random.uniform(0, min(1.0, REDIS_BACKOFF_BASE * 2**attempt))
            if time.monotonic() + pause >= deadline:
                raise
            refresh(client)
            sleep(pause)


@dataclass(frozen=True)
class NodeReply:
    reply: Any
    replicas_needed: int
    replicas_acked: int

    @property
    def replicated(self) -> bool:
        return self.replicas_acked >= self.replicas_needed


class Replication:
    """How many replicas a write waits for: the setting, else 1 where the master has one."""

    def __init__(self, wanted: int | None, timeout_seconds: float) -> None:
        self.wanted = wanted
        self.timeout_ms = max(1, int(timeout_seconds * 1000))
        self._seen: dict[int, tuple[float, int]] = {}  # id(node client) -> (when, replicas)
        self._lock = threading.Lock()

    def forget(self) -> None:
        """After an error: the master may have changed, and its replicas with it."""
        with self._lock:
            self._seen.clear()

    def wait_ms(self, node: Any) -> int:
        """The WAIT timeout, kept under the connection's socket timeout so that a WAIT that
        runs its course is never mistaken for a dead connection."""
        kwargs = getattr(getattr(node, "connection_pool", None), "connection_kwargs", {})
        socket_timeout = kwargs.get("socket_timeout")
        if not socket_timeout:
            return self.timeout_ms
        return max(1, min(self.timeout_ms, int(socket_timeout * 1000 * 0.8)))

    def needed(self, node: Any) -> int:
        if self.wanted is not None:
            return self.wanted
        now = time.monotonic()
        with self._lock:
            seen = self._seen.get(id(node))
        if seen is not None and now - seen[0] < _REPLICA_CACHE_SECONDS:
            return seen[1]
        try:
            replicas = int(node.info("replication").get("connected_slaves", 0))
        except (redis.exceptions.ResponseError, AttributeError, TypeError, ValueError):
            replicas = 0  # a server (or fake) that cannot say has none we could wait for
        needed = min(1, replicas)
        with self._lock:
            self._seen[id(node)] = (now, needed)
        return needed


def on_flag_node(
    client: Any,
    key: str,
    send: Callable[[Any], None],
    replication: Replication | None,
    *,
    deadline_seconds: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> NodeReply:
    """Run ``send(pipeline)`` (one command) on ``key``'s node, WAIT behind it, retried on
    redirection, a lost connection or a failover until ``deadline_seconds`` pass."""
    if deadline_seconds is None:
        deadline_seconds = write_retry_seconds(client)
    deadline = time.monotonic() + deadline_seconds
    asking: tuple[str, int] | None = None
    attempt = 0
    last: BaseException
    while True:
        try:
            node = node_for(client, key) if asking is None else node_at(client, *asking)
            needed = replication.needed(node) if replication is not None else 0
            pipe = node.pipeline(transaction=False)
            if asking is not None:
                pipe.execute_command("ASKING")
            send(pipe)
            if needed and replication is not None:
                pipe.wait(needed, replication.wait_ms(node))
            replies = pipe.execute()
            offset = 1 if asking is not None else 0
            acked = int(replies[offset + 1]) if needed else 0
            return NodeReply(replies[offset], needed, acked)
        except redis.exceptions.AskError as error:
            last = error
            if isinstance(error, redis.exceptions.MovedError) or asking is not None:
                asking = None
                refresh(client)
            else:  # the slot is migrating: ask the importing node, at once
                asking = (error.host, error.port)
                continue
        except RETRIABLE as error:
            last = error
            asking = None
            refresh(client)
            if replication is not None:
                replication.forget()
        attempt += 1
        pause = random.uniform(0, min(1.0, REDIS_BACKOFF_BASE * 2**attempt))
        if time.monotonic() + pause >= deadline:
            raise last
        sleep(pause)
