"""Linux /proc readings for bench/api.py: which gunicorn worker holds a connection, CPU spent."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def _server_sockets(port: int) -> dict[int, str]:
    """Established server-side sockets on ``port``: {client port: socket inode} (/proc)."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                cols = row.split()
                local, remote, state, inode = cols[1], cols[2], cols[3], cols[9]
                if int(local.rsplit(":", 1)[1], 16) == port and state == "01":
                    found[int(remote.rsplit(":", 1)[1], 16)] = inode
    return found


def _sockets_of(pid: int) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


def worker_of(serve_pid: int, port: int, client_port: int) -> int | None:
    """The gunicorn worker (pid) that holds our connection from ``client_port``."""
    inode = _server_sockets(port).get(client_port)
    if inode is None:
        return None
    return next((pid for pid in descendants(serve_pid) if inode in _sockets_of(pid)), None)


def connections_per_worker(serve_pid: int, port: int) -> list[int]:
    """How many established connections to ``port`` each of serve's processes holds."""
    inodes = set(_server_sockets(port).values())
    counts = [len(inodes & _sockets_of(pid)) for pid in descendants(serve_pid)]
    return sorted((n for n in counts if n), reverse=True)


def cpu_seconds(pids: dict[str, list[int]]) -> dict[str, float]:
    """User + system CPU seconds so far of each group of processes (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    spent = {}
    for part, group in pids.items():
        total = 0.0
        for pid in group:
            if pid == os.getpid():
                times = os.times()
                total += times.user + times.system
                continue
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{pid}/stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                total += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        spent[part] = total
    return spent


def descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    found, todo = [], [root]
    while todo:
        parent = todo.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        todo += children
    return found
