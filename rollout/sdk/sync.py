"""The SDK's background thread: full load, then the change channel, with periodic resyncs.

When Redis goes away the client keeps its last-known flags, logs the outage once, retries with
backoff and resyncs fully when Redis answers again. A bootstrap file, written after each good
sync, lets a process that starts during an outage serve the last-known values too.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollout.core.errors import RolloutError
from rollout.core.model import Flag
from rollout.core.schema import flag_from_dict, flag_to_dict
from rollout.storage.connection import connect
from rollout.storage.feed import Change, ChangeFeed
from rollout.storage.flags import FlagStore
from rollout.storage.keys import Keys

if TYPE_CHECKING:
    from rollout.sdk.client import RolloutClient

log = logging.getLogger("rollout.sdk")

BACKOFF_START = 0.05
BACKOFF_MAX = 5.0
BOOTSTRAP_FORMAT = "rollout-bootstrap"


def write_bootstrap(path: Path, flags: dict[str, Flag]) -> None:
    """Atomic (temp file + rename), so a crash never leaves half a file to start from."""
    document = {"format": BOOTSTRAP_FORMAT, "flags": [flag_to_dict(f) for f in flags.values()]}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".bootstrap-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(document, out, separators=(",", ":"))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_bootstrap(path: Path) -> dict[str, Flag]:
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or document.get("format") != BOOTSTRAP_FORMAT:
        raise ValueError(f"{path} is not a rollout bootstrap file")
    flags = {}
    raw_flags = document.get("flags")
    if not isinstance(raw_flags, list):
        raise ValueError(f"{path} has no list of flags")
    for raw in raw_flags:
        try:
            flag = flag_from_dict(raw)
        except RolloutError as error:
            log.error("bootstrap file %s: skipping a flag: %s", path, error)
            continue
        flags[flag.key] = flag
    return flags


class Syncer:
    def __init__(self, client: RolloutClient) -> None:
        self.client = client
        self.settings = client.settings
        self.keys = Keys(self.settings.key_prefix)
        self.synced = threading.Event()
        self.connected = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._outage_logged = False
        self._malformed_logged: set[str] = set()
        self._redis: Any = None

    def start(self) -> None:
        # The first sync runs before returning, so answers are right from the first call;
        # its timeouts are the bounded socket timeouts, and failure is not an error here.
        if not self._sync_once_at_start():
            self._load_bootstrap()
        self._thread = threading.Thread(target=self._run, name="rollout-sdk-sync", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._disconnect()

    # -- one connection's life ---------------------------------------------------------

    def _connect(self) -> tuple[FlagStore, ChangeFeed]:
        if self._redis is None:
            self._redis = connect(
                self.settings.redis_url,
                self.settings.data_dir,
                start_embedded=False,  # the SDK never starts a server
                socket_timeout=self.settings.socket_timeout,
            )
        store = FlagStore(self._redis, self.keys)
        feed = ChangeFeed(self._redis, self.keys)
        # Subscribe before loading: a change landing in between is then seen twice, not never.
        feed.subscribe()
        return store, feed

    def _disconnect(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            try:
                client.close()
            except Exception:
                pass

    def _full_sync(self, store: FlagStore) -> None:
        flags, problems = store.load_all()
        for problem in problems:
            if problem.key not in self._malformed_logged:
                log.error("%s; it answers its default until fixed", problem)
                self._malformed_logged.add(problem.key)
        self._malformed_logged &= {p.key for p in problems}
        self.client._replace_all(flags)
        self.synced.set()
        self._on_connected()
        path = self.settings.bootstrap_file
        if path is not None:
            try:
                write_bootstrap(path, flags)
            except OSError as error:
                log.warning("could not write bootstrap file %s: %s", path, error)

    def _sync_once_at_start(self) -> bool:
        try:
            store, feed = self._connect()
            self._full_sync(store)
            feed.close()
            return True
        except RolloutError as error:
            self._on_outage(error)
            self._disconnect()
            return False

    def _load_bootstrap(self) -> None:
        path = self.settings.bootstrap_file
        if path is None or not path.exists():
            return
        try:
            flags = read_bootstrap(path)
        except Exception as error:  # a damaged file must never stop the application starting
            log.error("could not read bootstrap file %s: %s", path, type(error).__name__)
            return
        self.client._replace_all(flags)
        log.warning("serving %d flags from bootstrap file %s until Redis answers", len(flags), path)

    def _on_outage(self, error: BaseException) -> None:
        if not self._outage_logged:
            self._outage_logged = True
            log.warning("Redis unreachable (%s); serving last-known flag values", error)
        # Flipped after the log line, so whoever sees "disconnected" also finds it logged.
        was, self.connected = self.connected, False
        if was:
            self.client._connection_changed(False)

    def _on_connected(self) -> None:
        was, self.connected = self.connected, True
        if not was:
            self.client._connection_changed(True)
        if self._outage_logged:
            self._outage_logged = False
            log.warning("Redis reachable again; flags resynced")

    def _follow(self, store: FlagStore, feed: ChangeFeed) -> None:
        next_resync = time.monotonic() + self.settings.resync_interval
        while not self._stop.is_set():
            wait = max(0.0, min(0.5, next_resync - time.monotonic()))
            change = feed.next_change(timeout=wait)
            if isinstance(change, Change):
                self._apply(change.key, change.version, change.flag)
            if time.monotonic() >= next_resync:
                self._full_sync(store)
                next_resync = time.monotonic() + self.settings.resync_interval

    def _apply(self, key: str, version: int, raw: dict[str, Any] | None) -> None:
        flag = None
        if raw is not None:
            try:
                flag = flag_from_dict(raw).with_changes(version=version)
            except RolloutError as error:
                log.error("flag %r: unreadable change (%s); it answers its default", key, error)
        self.client._apply(key, flag, version)

    def _run(self) -> None:
        backoff = BACKOFF_START
        while not self._stop.is_set():
            feed = None
            try:
                store, feed = self._connect()
                self._full_sync(store)
                backoff = BACKOFF_START
                self._follow(store, feed)
            except RolloutError as error:
                self._on_outage(error)
                self._disconnect()
            except Exception:  # a bug here must not kill the thread and freeze every flag
                log.exception("rollout SDK sync failed; retrying")
                self._disconnect()
            finally:
                if feed is not None:
                    feed.close()
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, BACKOFF_MAX)
