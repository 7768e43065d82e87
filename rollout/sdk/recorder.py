"""Outcome recording: ``track()`` and ``record()`` fold into per-arm counters, a thread flushes.

The caller's side adds to counters that belong to the flag value it evaluated (no lock, no
allocation beyond the context manager, never a raise). Once a second the flusher sends what grew
since the last successful flush, with this process's memory growth, in one pipeline. When Redis
is away the deltas simply wait: nothing is lost unless more than ``metrics_buffer`` replaced flag
values pile up unsent, and then the oldest are dropped and counted. A batch whose flush failed is
kept and sent again first, unchanged and under its number, so a part of it that had landed is not
counted twice (``MetricsStore.flush``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import Protocol

from rollout.core.bounds import Moments
from rollout.core.defaults import MEMORY_REPORT_INTERVAL, RETIRED_KEEP
from rollout.core.errors import RolloutError
from rollout.core.evidence import chan
from rollout.core.histogram import UPPER_BOUNDS
from rollout.core.outage import Outage
from rollout.sdk.compiled import CONTROL, ON, TREATMENT, ArmCounter, Compiled
from rollout.sdk.values import ValueSink
from rollout.storage.metrics import ARMS, ArmTally, Batch, MetricsStore

log = logging.getLogger("rollout.sdk")

_perf = time.perf_counter
_bucket = bisect_left
_UPPER = UPPER_BOUNDS


def resident_mb() -> float:
    """This process's resident memory in MB (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1_048_576
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


MAX_TYPE_NAME = 100


def _type_names(counts: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Error type names Redis can store: UTF-8, at most 100 characters, never empty."""
    names: dict[str, int] = {}
    for name, count in counts:
        text = str(name).encode("utf-8", "backslashreplace").decode("utf-8")[:MAX_TYPE_NAME]
        names[text or "error"] = names.get(text or "error", 0) + count
    return names


def _added(held: ArmTally | None, more: ArmTally) -> ArmTally:
    if held is None:
        return more
    by_type, latency = dict(held.errors_by_type), dict(held.latency)
    for name, count in more.errors_by_type.items():
        by_type[name] = by_type.get(name, 0) + count
    for index, count in more.latency.items():
        latency[index] = latency.get(index, 0) + count
    values = dict(held.values)
    for name, moments in more.values.items():
        values[name] = chan((values[name], moments)) if name in values else moments
    return ArmTally(
        samples=held.samples + more.samples,
        errors=held.errors + more.errors,
        exposures=held.exposures + more.exposures,
        errors_by_type=by_type,
        latency=latency,
        values=values,
    )


def _process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Track:
    """``with flag.track(user) as enabled:`` — one evaluation, one outcome in its arm.

    Hand-inlined (no helper calls): this wraps every tracked request, and the budget is 1 µs
    beyond the body. A tracked evaluation is a sample, not an exposure, so it is not counted
    as one (``is_enabled`` counts exposures).
    """

    __slots__ = ("_arm", "_attributes", "_compiled", "_start", "_user")

    def __init__(self, compiled: Compiled, user: object, attributes: object = None) -> None:
        self._compiled = compiled
        self._user = user
        self._attributes = attributes

    def __enter__(self) -> bool:
        code = self._compiled.assign(self._user, self._attributes)
        if code >= CONTROL:
            self._arm: ArmCounter | None = self._compiled.arms[code - CONTROL]
            self._start = _perf()
            return code == TREATMENT
        self._arm = None  # allowed, denied, overridden, killed: not in the comparison
        return code == ON

    def __exit__(self, kind: type[BaseException] | None, error: object, tb: object) -> None:
        arm = self._arm
        if arm is not None:
            arm.latency[_bucket(_UPPER, (_perf() - self._start) * 1000.0)] += 1
            arm.samples += 1
            if kind is not None:
                arm.errors += 1
                by_type = arm.by_type
                name = kind.__name__
                by_type[name] = by_type.get(name, 0) + 1
        # Returning None lets the caller's exception go on, untouched.


# What one flush sent of an answer function: per arm (samples, errors, by type, latency
# histogram), then the exposures (control, treatment).
ArmMark = tuple[int, int, dict[str, int], list[int]]
Sent = tuple[Compiled, list[ArmMark], tuple[int, int]]


class Answers(Protocol):
    """Where the recorder finds the answer functions whose counts it sends (``sdk.table``)."""

    def take_retired(self) -> list[Compiled]: ...

    def current(self) -> list[Compiled]: ...


class Recorder:
    def __init__(
        self,
        answers: Answers,
        store: Callable[[], MetricsStore],
        *,
        clock: Callable[[], float],
        capacity: int,
        flush_interval: float,
        memory_probe: Callable[[], float] = resident_mb,
    ) -> None:
        self.answers = answers
        self._connect_store = store
        self.clock = clock
        self.capacity = capacity
        self.flush_interval = flush_interval
        self.dropped = 0
        self.memory_probe = memory_probe
        self.memory_start = memory_probe()
        # Several clients may live in one process; each reports under its own name.
        self.process = _process_name()
        self._pid = os.getpid()
        # What was sent last, per answer function and arm: samples, errors, by type, latency.
        self._sent: dict[int, Sent] = {}
        # The batch a failed flush kept (with its marks and time), sent again first; batches
        # are numbered per process so that a retry is recognised where it already landed.
        self._retry: tuple[Batch, dict[int, Sent], float] | None = None
        self._sequence = 0
        # Replaced answer functions, with when they were replaced: a track() block that began
        # before the change still records into them, so they are flushed for a while longer.
        self._pending_retired: list[tuple[Compiled, float]] = []
        self._served: set[tuple[str, int]] = set()  # (key, epoch) where we served the treatment
        self._memory_reported: set[tuple[str, int]] = set()
        self._last_memory_report = 0.0
        self._lock = threading.Lock()  # one flush at a time (the thread, close(), flush())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._store: MetricsStore | None = None
        self._outage = Outage()  # the metrics flush's: one line when it fails, one when back
        # Business values taken from the arms but not yet sent (an outage keeps them here).
        self._unsent_values: dict[tuple[str, int, str], dict[str, Moments]] = {}
        self.values = ValueSink()
        self._settling: list[tuple[tuple[str, int, str], dict[str, list[float]]]] = []
        self._values_dropped_sent = 0

    # -- the caller's side ---------------------------------------------------------------

    def record(
        self,
        compiled: Compiled,
        user: object,
        ok: bool,
        duration_ms: float | None,
        error_type: str | None,
        attributes: object = None,
    ) -> None:
        try:
            code = compiled.assign(user, attributes)
            if code < CONTROL:
                return
            if not ok and not error_type:
                error_type = "error"
            compiled.arms[code - CONTROL].add(
                None if duration_ms is None else float(duration_ms),
                None if ok else str(error_type),
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
        while not self._stop.wait(self.flush_interval):
            self.flush(settle=True)

    def _live(self, now: float) -> list[Compiled]:
        retired = self._pending_retired + [(c, now) for c in self.answers.take_retired()]
        if len(retired) > self.capacity:
            # Replaced flag values whose counts could not be sent: keep the newest, count the rest.
            for old, _since in retired[: len(retired) - self.capacity]:
                self.dropped += sum(a.samples for a in old.arms) - self._sent_samples(old)
                self._sent.pop(id(old), None)
            retired = retired[len(retired) - self.capacity :]
        self._pending_retired = retired
        return [c for c, _since in retired] + self.answers.current()

    def _sent_samples(self, compiled: Compiled) -> int:
        sent = self._sent.get(id(compiled))
        if sent is None or sent[0] is not compiled:
            return 0
        return sum(arm[0] for arm in sent[1])

    def collect(self, now: float, *, settle: bool = False) -> tuple[Batch, dict[int, Sent]]:
        """What grew since the last successful flush, and the marks to commit after sending."""
        batch = Batch()
        marks: dict[int, Sent] = {}
        live = self._live(now)
        for compiled in live:
            exposures = compiled.exposures()
            found = self._sent.get(id(compiled))
            sent: Sent = (
                found
                if found is not None and found[0] is compiled
                else (compiled, [(0, 0, {}, [0] * len(a.latency)) for a in compiled.arms], (0, 0))
            )
            arm_marks: list[ArmMark] = []
            for index, arm in enumerate(compiled.arms):
                samples, errors = arm.samples, arm.errors
                by_type, latency = dict(arm.by_type), list(arm.latency)
                before = sent[1][index]
                tally = ArmTally(
                    samples=samples - before[0],
                    errors=errors - before[1],
                    exposures=exposures[index] - sent[2][index],
                    errors_by_type=_type_names(
                        (k, v - before[2].get(k, 0))
                        for k, v in by_type.items()
                        if v > before[2].get(k, 0)
                    ),
                    latency={
                        i: c - before[3][i] for i, c in enumerate(latency) if c > before[3][i]
                    },
                )
                arm_marks.append((samples, errors, by_type, latency))
                if tally.fields():
                    # A replaced answer function and its successor share a stage: add up.
                    slot = (compiled.key, compiled.epoch, ARMS[index])
                    batch.tallies[slot] = _added(batch.tallies.get(slot), tally)
                    if index == 1:
                        self._served.add((compiled.key, compiled.epoch))
            marks[id(compiled)] = (compiled, arm_marks, exposures)
        self._take_values(live, settle=settle)
        for slot, values in self._unsent_values.items():
            tally = batch.tally(*slot)
            tally.values = dict(values)
            if slot[2] == ARMS[1]:
                self._served.add((slot[0], slot[1]))
        self._memory(batch, now, live)
        batch.dropped = self.dropped
        batch.values_dropped = self.values.dropped - self._values_dropped_sent
        return batch, marks

    def _take_values(self, live: list[Compiled], *, settle: bool) -> None:
        """Swap each arm's values for a fresh dict and fold them into the unsent ones.

        With ``settle`` (the flusher thread) a dict taken away is read only at the next flush:
        an ``observe`` that fetched its moments just before the swap has long finished writing
        them by then, so none is lost. A flush called by hand reads everything at once.
        """
        settled, self._settling = self._settling, []
        for compiled in live:
            for index, arm in enumerate(compiled.arms):
                if arm.values:
                    taken, arm.values = arm.values, {}
                    self._settling.append(((compiled.key, compiled.epoch, ARMS[index]), taken))
        if not settle:
            settled, self._settling = settled + self._settling, []
        for slot, taken in settled:
            held = self._unsent_values.setdefault(slot, {})
            for name, (n, mean, m2) in taken.items():
                part = Moments(int(n), mean, m2)
                held[name] = chan((held[name], part)) if name in held else part

    def _memory(self, batch: Batch, now: float, live: list[Compiled]) -> None:
        due = now - self._last_memory_report >= MEMORY_REPORT_INTERVAL
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

    def after_fork(self) -> None:
        """In a forked child (the client calls it; no thread runs here yet).

        The child gets a name of its own: under the parent's, the flush markers would take its
        batches for the parent's and skip them. What the parent had recorded and not yet sent
        (a kept batch, counts since its last flush) is the parent's to send, so the child
        marks it sent and counts from the fork. The lock is new: another thread of the parent
        may have held it at the fork, and that thread does not exist here.
        """
        self._lock = threading.Lock()
        self._pid, self.process = os.getpid(), _process_name()
        self._retry = None
        now = self.clock()
        try:
            batch, marks = self.collect(now)
        except Exception:
            log.exception("metrics: could not take over the counts after a fork")
            return
        self._unsent_values = {}
        self._settling = []
        self._values_dropped_sent += batch.values_dropped
        self._commit(marks, batch.dropped, now)

    def flush(self, *, settle: bool = False) -> None:
        with self._lock:
            if self._retry is not None and not self._send(*self._retry):
                return  # the batch that failed goes first, as it was, so it lands once
            now = self.clock()
            try:
                batch, marks = self.collect(now, settle=settle)
            except Exception:
                log.exception("metrics: could not collect outcomes")
                return
            self._sequence += 1
            batch.sequence = self._sequence
            self._send(batch, marks, now)

    def _send(self, batch: Batch, marks: dict[int, Sent], now: float) -> bool:
        """Send ``batch``; False when Redis is away and it is kept to be sent again, unchanged
        (same sequence, same ``now``): a part that landed before the failure is not added twice
        (``MetricsStore.flush``)."""
        dropped_sent = batch.dropped
        try:
            if batch:
                self._metrics_store().flush(batch, now=now, process=self.process)
        except RolloutError as error:
            # The deltas wait for the next flush; flag answers are not affected.
            self._retry = (batch, marks, now)
            self._unsent_values = {}  # they are in the batch kept
            if self._outage.failed():
                log.warning("could not flush metrics (%s); will retry", error)
            return False
        except Exception:
            # Not an outage but a batch that cannot be sent: retrying it would block every
            # later flush, so it is dropped (and counted) and flushing goes on.
            log.exception("metrics: dropped a batch that could not be sent")
            self.dropped += sum(t.samples for t in batch.tallies.values())
            self.values.dropped += sum(
                m.n for t in batch.tallies.values() for m in t.values.values()
            )
            dropped_sent = 0  # the drops it carried were not sent either
            batch.values_dropped = 0
        self._retry = None
        self._unsent_values = {}
        self._values_dropped_sent += batch.values_dropped
        self._commit(marks, dropped_sent, now)
        if self._outage.succeeded():
            log.warning("metrics flushing works again")
        return True

    def _commit(self, marks: dict[int, Sent], dropped_sent: int, now: float) -> None:
        self._sent = marks
        self.dropped -= dropped_sent
        # Sent up to now; a block still running in a replaced function may add a little more.
        self._pending_retired = [
            (c, since) for c, since in self._pending_retired if now - since < RETIRED_KEEP
        ]

    def _metrics_store(self) -> MetricsStore:
        # Built once Redis is first reached; the client it holds reconnects by itself.
        if self._store is None:
            self._store = self._connect_store()
        return self._store
