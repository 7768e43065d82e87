"""Outcome recording: ``track()`` and ``record()`` feed a bounded buffer, a thread flushes it.

The caller's side is an append to a deque (atomic under the GIL, no lock) or a counted drop when
the buffer is full: it never blocks and never raises. Once a second the flusher drains the
buffer, folds it into per-arm tallies and sends them with the exposure deltas and this process's
memory growth in one pipeline.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rollout.core.errors import RolloutError
from rollout.core.histogram import bucket_index
from rollout.sdk.compiled import CONTROL, Compiled
from rollout.storage.connection import connect
from rollout.storage.keys import Keys
from rollout.storage.metrics import ARMS, Batch, MetricsStore

if TYPE_CHECKING:
    from rollout.sdk.client import FlagHandle, RolloutClient

log = logging.getLogger("rollout.sdk")

MEMORY_REPORT_SECONDS = 5.0
# (flag key, stage epoch, arm index, duration ms, error type or None)
Outcome = tuple[str, int, int, float, str | None]


def resident_mb() -> float:
    """This process's resident memory in MB (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1_048_576
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Track:
    """``with flag.track(user) as enabled:`` — one evaluation, one outcome in its arm."""

    __slots__ = ("_code", "_compiled", "_handle", "_start", "_user")

    def __init__(self, handle: FlagHandle, user: object) -> None:
        self._handle = handle
        self._user = user

    def __enter__(self) -> bool:
        compiled = self._compiled = self._handle._compiled
        code = self._code = compiled.assign(self._user)
        if code >= CONTROL:
            compiled.counts[code - CONTROL] += 1
        self._start = time.perf_counter()
        return code & 1 == 1

    def __exit__(self, kind: type[BaseException] | None, error: object, tb: object) -> None:
        if self._code >= CONTROL:
            elapsed_ms = (time.perf_counter() - self._start) * 1000.0
            compiled = self._compiled
            self._handle._client._recorder.add(
                (
                    compiled.key,
                    compiled.epoch,
                    self._code - CONTROL,
                    elapsed_ms,
                    None if kind is None else kind.__name__,
                )
            )
        # Returning None lets the caller's exception go on, untouched.


class Recorder:
    def __init__(
        self,
        client: RolloutClient,
        *,
        memory_probe: Callable[[], float] = resident_mb,
    ) -> None:
        self.client = client
        self.settings = client.settings
        self.capacity = self.settings.metrics_buffer
        self.buffer: deque[Outcome] = deque()
        self.dropped = 0
        self.memory_probe = memory_probe
        self.memory_start = memory_probe()
        # Several clients may live in one process; each reports under its own name.
        self.process = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._sent_counts: dict[int, tuple[Compiled, int, int]] = {}
        self._served: set[tuple[str, int]] = set()  # (key, epoch) where we served the treatment
        self._last_memory_report = 0.0
        self._memory_reported: set[tuple[str, int]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._store: MetricsStore | None = None
        self._outage_logged = False

    # -- the caller's side ---------------------------------------------------------------

    def add(self, outcome: Outcome) -> None:
        if len(self.buffer) < self.capacity:
            self.buffer.append(outcome)
        else:
            self.dropped += 1

    def record(
        self,
        compiled: Compiled,
        user: object,
        ok: bool,
        duration_ms: float | None,
        error_type: str | None,
    ) -> None:
        try:
            code = compiled.assign(user)
            if code < CONTROL:
                return
            if not ok and not error_type:
                error_type = "error"
            self.add(
                (
                    compiled.key,
                    compiled.epoch,
                    code - CONTROL,
                    float("nan") if duration_ms is None else float(duration_ms),
                    None if ok else str(error_type),
                )
            )
        except Exception:  # a bad argument must not break the caller's request
            self.dropped += 1

    # -- the flusher ---------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rollout-sdk-flush", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.flush()  # the last second's outcomes, best effort

    def _run(self) -> None:
        while not self._stop.wait(self.settings.flush_interval):
            self.flush()

    def collect(self, now: float) -> Batch:
        """Drain the buffer and the exposure counters into one batch."""
        batch = Batch()
        buffer = self.buffer
        while buffer:
            try:
                key, epoch, arm, duration_ms, error_type = buffer.popleft()
            except IndexError:
                break
            tally = batch.tally(key, epoch, ARMS[arm])
            tally.samples += 1
            if duration_ms == duration_ms:  # NaN: an outcome recorded without a duration
                index = bucket_index(duration_ms)
                tally.latency[index] = tally.latency.get(index, 0) + 1
            if error_type is not None:
                tally.errors += 1
                tally.errors_by_type[error_type] = tally.errors_by_type.get(error_type, 0) + 1
            if arm == 1:
                self._served.add((key, epoch))
        live = self.client._live_compiled()
        for compiled in live:
            sent = self._sent_counts.get(id(compiled))
            control, treatment = compiled.counts
            before = (0, 0) if sent is None or sent[0] is not compiled else sent[1:]
            if control > before[0]:
                batch.tally(compiled.key, compiled.epoch, "control").exposures += (
                    control - before[0]
                )
            if treatment > before[1]:
                batch.tally(compiled.key, compiled.epoch, "treatment").exposures += (
                    treatment - before[1]
                )
                self._served.add((compiled.key, compiled.epoch))
            self._sent_counts[id(compiled)] = (compiled, control, treatment)
        current = {id(c) for c in live}
        for gone in [i for i in self._sent_counts if i not in current]:
            del self._sent_counts[gone]
        due = now - self._last_memory_report >= MEMORY_REPORT_SECONDS
        fresh = self._served - self._memory_reported
        if self._served and (due or fresh):
            # A stage that just began gets its first report at once, so its memory gate does
            # not sit at "insufficient" for a whole reporting period.
            if due:
                self._last_memory_report = now
            growth = max(0.0, self.memory_probe() - self.memory_start)
            for served in self._served if due else fresh:
                batch.memory_mb[served] = growth
            self._memory_reported |= fresh
            live_epochs = {(c.key, c.epoch) for c in live}
            self._served &= live_epochs
            self._memory_reported &= live_epochs
        batch.dropped, self.dropped = self.dropped, 0
        return batch

    def flush(self) -> None:
        now = self.client.clock()
        try:
            batch = self.collect(now)
            if batch:
                self._metrics_store().flush(batch, now=now, process=self.process)
            if self._outage_logged:
                self._outage_logged = False
                log.warning("metrics flushing works again")
        except RolloutError as error:
            # Metrics are lost during an outage (and counted as dropped if we can say so);
            # flag answers are not affected.
            self._store = None
            if not self._outage_logged:
                self._outage_logged = True
                log.warning(
                    "could not flush metrics (%s); dropping them until Redis answers", error
                )
        except Exception:
            log.exception("metrics flush failed")

    def _metrics_store(self) -> MetricsStore:
        if self._store is None:
            client: Any = connect(
                self.settings.redis_url,
                self.settings.data_dir,
                start_embedded=False,
                socket_timeout=self.settings.socket_timeout,
            )
            self._store = MetricsStore(
                client, Keys(self.settings.key_prefix), self.settings.metrics_retention
            )
        return self._store
