"""The SDK as a user of the channel follower: it keeps the flag table current.

The follower (``storage.follower``) loads, follows, resyncs and backs off; this module says what
the SDK does with it. When Redis goes away the table keeps its last-known flags. A bootstrap
file, written after each good load, lets a process that starts during an outage serve the
last-known values too. A malformed flag is logged once and answers its default until fixed.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from rollout.core.errors import MalformedFlag, RolloutError
from rollout.core.model import Flag
from rollout.core.schema import flag_from_dict, flag_to_dict
from rollout.sdk.listeners import Listeners
from rollout.settings import Settings
from rollout.storage.follower import ChannelFollower
from rollout.storage.keys import Keys

log = logging.getLogger("rollout.sdk")

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


class Table(Protocol):
    """What the follower updates: the SDK's flag table (``sdk.table``)."""

    def replace_all(self, flags: dict[str, Flag]) -> None: ...

    def apply(self, key: str, version: int, flag: Flag | None) -> bool: ...

    @property
    def flags(self) -> dict[str, Flag]: ...


class FlagSync:
    def __init__(
        self,
        table: Table,
        redis: Callable[[], Any],
        settings: Settings,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.table = table
        self.bootstrap_file = settings.bootstrap_file
        self._malformed_logged: set[str] = set()
        self.connection: Listeners[bool] = Listeners()  # False: Redis went away; True: back
        self._up = False
        self.follower = ChannelFollower(
            redis,
            Keys(settings.key_prefix),
            on_load=self._loaded,
            on_change=table.apply,
            known=lambda: table.flags,
            on_lost=self._lost,
            resync_interval=settings.resync_interval,
            monotonic=monotonic,
            log=log,
            while_down="serving last-known flag values",
            name="rollout-sdk-sync",
        )

    def start(self) -> None:
        # The first load runs before returning, so answers are right from the first call; its
        # timeouts are the bounded socket timeouts, and failure is not an error here. The
        # bootstrap file is read before the thread starts, so it can never overwrite a load.
        if not self.follower.first_sync():
            self._load_bootstrap()
        self.follower.start()

    def stop(self) -> None:
        self.follower.stop()

    def _loaded(self, flags: dict[str, Flag], problems: list[MalformedFlag]) -> None:
        for problem in problems:
            if problem.key not in self._malformed_logged:
                log.error("%s; it answers its default until fixed", problem)
                self._malformed_logged.add(problem.key)
        self._malformed_logged &= {p.key for p in problems}
        self.table.replace_all(flags)
        if not self._up:
            self._up = True
            self.connection(True)
        path = self.bootstrap_file
        if path is not None:
            try:
                write_bootstrap(path, flags)
            except OSError as error:
                log.warning("could not write bootstrap file %s: %s", path, error)

    def _lost(self) -> None:
        if self._up:
            self._up = False
            self.connection(False)

    def _load_bootstrap(self) -> None:
        path = self.bootstrap_file
        if path is None or not path.exists():
            return
        try:
            flags = read_bootstrap(path)
        except Exception as error:  # a damaged file must never stop the application starting
            log.error("could not read bootstrap file %s: %s", path, type(error).__name__)
            return
        self.table.replace_all(flags)
        log.warning("serving %d flags from bootstrap file %s until Redis answers", len(flags), path)
