"""Small shared test helpers: an injected clock, a bounded wait, a write nobody hears of."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rollout.core.model import Flag
from rollout.storage.codec import encode_flag
from rollout.storage.keys import Keys
from rollout.storage.redis_process import RedisProcess


class FakeClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01) -> bool:
    """Poll ``condition`` until true or ``timeout``: for deadlines, never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def wait_for(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.02) -> Any:
    """``wait_until`` that hands back what ``check`` found (its last answer at the deadline)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    return check()


def store_malformed(redis_client: Any, key: str, doc: str, *, version: int = 1) -> None:
    """A stored flag value no reader can decode, as a bug or a hand edit would leave one.

    Written under the default key prefix, the one the ``services`` fixtures use.
    """
    keys = Keys()
    redis_client.hset(keys.flag(key), mapping={"v": version, "d": doc})
    redis_client.sadd(keys.index, key)


def write_quietly(redis: Any, flag: Flag, prefix: str = "rollout") -> None:
    """Store ``flag`` at its version as a write would, but publish nothing: only a full load
    (a resync, a reconnect) can bring it to a reader that follows the change channel."""
    keys = Keys(prefix)
    redis.hset(keys.flag(flag.key), mapping={"v": flag.version, "d": encode_flag(flag)})
    redis.sadd(keys.index, flag.key)


def append_to_log(server: RedisProcess, *command: str) -> None:
    """A command a stopped server replays from its AOF when it starts: a change nobody hears of."""
    out = [f"*{len(command)}\r\n".encode()]
    for arg in command:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    with open(server.aof_path, "ab") as aof:
        aof.write(b"".join(out))
