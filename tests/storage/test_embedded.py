"""The embedded default (DESIGN §5): one shared server per data dir, started under a file lock."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import redis

from rollout.storage.embedded import SUN_PATH_MAX, EmbeddedRedis, short_socket_dir
from rollout.storage.redis_process import pid_alive, read_pidfile

Make = Callable[..., EmbeddedRedis]
Pids = Callable[[Path], list[int]]


def incr(url: str, key: str = "n") -> int:
    client = redis.Redis.from_url(url)
    try:
        return int(client.incr(key))
    finally:
        client.close()


def test_ensure_running_starts_one_server_and_reuses_it(
    make_embedded: Make, server_pids: Pids
) -> None:
    embedded = make_embedded()
    assert not embedded.data_dir.exists()
    url = embedded.ensure_running()

    assert url == f"unix://{embedded.data_dir / 'redis.sock'}"
    assert stat.S_IMODE(embedded.data_dir.stat().st_mode) == 0o700
    pid = read_pidfile(embedded.pidfile)
    assert pid is not None and pid_alive(pid)
    assert os.getsid(pid) == pid  # its own session: it outlives the CLI that started it
    assert incr(url) == 1

    # A second launcher (another process, as far as it knows) finds the same server.
    assert EmbeddedRedis(embedded.data_dir).ensure_running() == url
    assert server_pids(embedded.data_dir) == [pid]
    assert incr(url) == 2
    assert embedded.aof_path.exists()


def test_running_url_never_starts_a_server(make_embedded: Make, server_pids: Pids) -> None:
    embedded = make_embedded()
    assert embedded.running_url() is None
    assert not embedded.data_dir.exists()  # not even the data dir is created

    embedded.data_dir.mkdir()
    assert embedded.running_url() is None
    assert list(embedded.data_dir.iterdir()) == []
    assert server_pids(embedded.data_dir) == []

    url = embedded.ensure_running()
    assert embedded.running_url() == url


def test_stop_and_status(make_embedded: Make) -> None:
    embedded = make_embedded()
    assert embedded.stop() is False
    assert embedded.status()["running"] is False

    url = embedded.ensure_running()
    status = embedded.status()
    pid = read_pidfile(embedded.pidfile)
    assert status == {
        "running": True,
        "pid": pid,
        "url": url,
        "socket": str(embedded.socket),
        "data_dir": str(embedded.data_dir),
        "aof": str(embedded.data_dir / "appendonly.aof"),
        "log": str(embedded.data_dir / "redis.log"),
    }

    assert EmbeddedRedis(embedded.data_dir).stop() is True
    assert pid is not None and not pid_alive(pid)
    status = embedded.status()
    assert (status["running"], status["pid"], status["url"]) == (False, None, None)
    assert not embedded.pidfile.exists() and not embedded.socket.exists()
    assert embedded.running_url() is None
    assert embedded.stop() is False


def test_data_survives_a_stop_through_the_aof(make_embedded: Make) -> None:
    embedded = make_embedded()
    incr(embedded.ensure_running())
    embedded.stop()
    assert incr(embedded.ensure_running()) == 2


def test_long_data_dir_puts_the_socket_at_a_short_temp_path(
    make_embedded: Make, short_tmp: Path
) -> None:
    data_dir = short_tmp / ("d" * 60) / ("e" * 60)
    assert len(os.fsencode(data_dir / "redis.sock")) >= SUN_PATH_MAX
    embedded = make_embedded(data_dir)

    sock = embedded.socket
    assert sock.parent == short_socket_dir() and sock.suffix == ".sock"
    assert len(os.fsencode(sock)) < SUN_PATH_MAX
    assert EmbeddedRedis(data_dir).socket == sock  # every process derives the same path
    assert EmbeddedRedis(short_tmp / "other").socket != sock

    url = embedded.ensure_running()
    assert url == f"unix://{sock}" and sock.exists()
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
    assert embedded.pidfile.parent == data_dir and embedded.aof_path.parent == data_dir
    assert incr(EmbeddedRedis(data_dir).ensure_running()) == 1
    assert embedded.stop() is True
    assert not sock.exists()


def test_stale_pid_and_socket_files_are_cleaned_up(make_embedded: Make) -> None:
    embedded = make_embedded()
    embedded.data_dir.mkdir(mode=0o700)
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = int(finished.stdout)
    embedded.pidfile.write_text(f"{dead}\n")
    embedded.socket.write_text("not a socket")  # left behind by a crashed server

    assert embedded.running_url() is None
    assert embedded.status()["running"] is False
    url = embedded.ensure_running()
    pid = read_pidfile(embedded.pidfile)
    assert pid is not None and pid != dead and pid_alive(pid)
    assert incr(url) == 1


def test_pid_file_naming_a_reused_pid_is_stale(make_embedded: Make) -> None:
    embedded = make_embedded()
    embedded.data_dir.mkdir(mode=0o700)
    embedded.pidfile.write_text(f"{os.getpid()}\n")  # alive, but not a redis-server
    assert embedded.running_url() is None
    embedded.ensure_running()
    assert read_pidfile(embedded.pidfile) != os.getpid()
    assert pid_alive(os.getpid())


RACER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import redis
    from rollout.storage.embedded import EmbeddedRedis

    embedded = EmbeddedRedis(Path(sys.argv[1]))
    print("ready", flush=True)
    sys.stdin.readline()  # the start gun: every racer is imported and waiting
    url = embedded.ensure_running()
    client = redis.Redis.from_url(url)
    for _ in range(int(sys.argv[2])):
        client.incr("counter")
    print(json.dumps({"url": url, "pid": embedded.status()["pid"]}), flush=True)
    """
)


def test_three_processes_starting_at_once_share_one_server(
    make_embedded: Make, server_pids: Pids
) -> None:
    embedded = make_embedded()
    n, rounds = 300, 3
    for round_ in range(1, rounds + 1):
        racers = [
            subprocess.Popen(
                [sys.executable, "-c", RACER, str(embedded.data_dir), str(n)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        try:
            for racer in racers:
                assert racer.stdout is not None and racer.stdout.readline().strip() == "ready"
            for racer in racers:
                assert racer.stdin is not None
                racer.stdin.write("go\n")
                racer.stdin.flush()
            outputs = [racer.communicate(timeout=60) for racer in racers]
        finally:
            for racer in racers:
                racer.kill()
        assert all(r.returncode == 0 for r in racers), [err for _, err in outputs]
        results = [json.loads(out) for out, _ in outputs]

        # The racers have exited; the server they share is still there, and there is one.
        pids = server_pids(embedded.data_dir)
        assert len(pids) == 1
        assert {r["pid"] for r in results} == set(pids)
        assert {r["url"] for r in results} == {embedded.url}
        client = redis.Redis.from_url(embedded.url)
        try:
            assert int(client.get("counter") or 0) == 3 * n
            client.delete("counter")
        finally:
            client.close()
        # Stop between rounds, so every round races to start a fresh server.
        assert embedded.stop() is True
        assert server_pids(embedded.data_dir) == [], f"round {round_}"
