"""The embedded default (DESIGN §5): one redis-server per data dir, shared by every rollout process.

Whichever process needs the server first starts it, under an exclusive ``flock`` on
``DATA_DIR/embedded.lock``; everyone re-checks after taking the lock, so two racing starters never
run two servers on the same AOF. The pid file, AOF, log and unix socket live in the data dir; the
socket moves to a per-user directory in the temp dir when its path would be too long for the OS,
at a name derived from the data dir so every process finds the same one. The server runs in its
own session, so it outlives the CLI process that started it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

from rollout.core.errors import StorageError
from rollout.storage.redis_process import RedisProcess, is_redis_server, pid_alive, read_pidfile

LOCK_NAME = "embedded.lock"
SOCKET_NAME = "redis.sock"
# sun_path is 108 bytes on Linux and 104 on the BSDs and macOS, including the trailing NUL.
SUN_PATH_MAX = 108 if sys.platform.startswith("linux") else 104
_LOCK_POLL = 0.01


def short_socket_dir() -> Path:
    # Per user, so one user's socket can't be squatted or read by another (checked before use).
    return Path(tempfile.gettempdir()) / f"rollout-{os.geteuid()}"


def socket_path_for(data_dir: Path) -> Path:
    """Where the server of ``data_dir`` listens: in it, or a short deterministic temp path."""
    candidate = data_dir / SOCKET_NAME
    if len(os.fsencode(candidate)) < SUN_PATH_MAX:
        return candidate
    digest = hashlib.sha256(os.fsencode(data_dir)).hexdigest()[:12]
    return short_socket_dir() / f"{digest}.sock"


def _private_dir_ok(path: Path) -> bool:
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o077


class EmbeddedRedis:
    """The launcher for the server of one data dir; cheap to construct, holds no connection."""

    def __init__(self, data_dir: Path) -> None:
        # Resolved, so a data dir reached through a symlink maps to the same short socket path.
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.socket = socket_path_for(self.data_dir)
        self._server = RedisProcess(self.data_dir, unixsocket=self.socket, port=0, detach=True)

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def pidfile(self) -> Path:
        return self._server.pidfile

    @property
    def aof_path(self) -> Path:
        return self._server.aof_path

    @property
    def lock_path(self) -> Path:
        return self.data_dir / LOCK_NAME

    def running_url(self) -> str | None:
        """The server's URL if one is running; never starts one and never writes (SDK path)."""
        return self.url if self._live() else None

    def ensure_running(self, timeout: float = 10.0, lock_timeout: float = 30.0) -> str:
        """The server's URL, starting the server first if none is running."""
        url = self.running_url()
        if url is not None:
            return url
        self._make_dirs()
        with self._lock(lock_timeout):
            # Another process may have started it while we waited for the lock.
            if not self._adopt(timeout):
                self._remove_leftovers()
                self._server.start(timeout)
        return self.url

    def stop(self, timeout: float = 10.0, lock_timeout: float = 30.0) -> bool:
        """Stop the server; False if none was running."""
        if not self.data_dir.is_dir():
            return False
        # Under the lock, so a concurrent starter waits for the old server to be gone.
        with self._lock(lock_timeout):
            return self._server.stop(timeout)

    def status(self) -> dict[str, Any]:
        pid = read_pidfile(self.pidfile)
        alive = pid is not None and pid_alive(pid)
        running = alive and self._ping()
        return {
            "running": running,
            "pid": pid if running else None,
            "url": self.url if running else None,
            "socket": str(self.socket),
            "data_dir": str(self.data_dir),
            "aof": str(self.aof_path),
            "log": str(self._server.logfile),
        }

    def _live(self) -> bool:
        pid = read_pidfile(self.pidfile)
        return pid is not None and pid_alive(pid) and self._ping()

    def _ping(self) -> bool:
        if not self.socket.exists():
            return False
        if self.socket.parent != self.data_dir and not _private_dir_ok(self.socket.parent):
            return False  # never talk to a socket in a directory someone else controls
        client = self._server.client(timeout=1.0)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def _adopt(self, timeout: float) -> bool:
        """Whether a server already holds the data dir (waiting for one still loading its AOF)."""
        pid = read_pidfile(self.pidfile)
        if pid is None or not pid_alive(pid) or not is_redis_server(pid):
            return False  # no pid file, or a stale one whose pid is dead or was reused
        try:
            self._server.wait_ready(timeout)
        except StorageError:
            raise StorageError(
                f"redis-server pid {pid} holds {self.data_dir} but does not answer on "
                f"{self.socket}; stop it (rollout embedded stop, or kill {pid}) and retry"
            ) from None
        return True

    def _remove_leftovers(self) -> None:
        # Only under the lock with no live server: a crashed server leaves these behind.
        self.pidfile.unlink(missing_ok=True)
        self.socket.unlink(missing_ok=True)

    def _make_dirs(self) -> None:
        try:
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            if self.socket.parent != self.data_dir:
                self.socket.parent.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise StorageError(exc) from exc
        if self.socket.parent != self.data_dir and not _private_dir_ok(self.socket.parent):
            raise StorageError(
                f"{self.socket.parent} must be a directory owned by you with mode 0700 "
                "(it holds the embedded server's socket)"
            )

    @contextlib.contextmanager
    def _lock(self, timeout: float) -> Iterator[None]:
        # flock dies with its descriptor, so a starter that crashes never leaves the lock held.
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StorageError(exc) from exc
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StorageError(
                            f"timed out after {timeout}s waiting for the lock {self.lock_path}"
                        ) from None
                    time.sleep(_LOCK_POLL)
            yield
        finally:
            os.close(fd)
