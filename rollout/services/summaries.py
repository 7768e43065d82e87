"""Stage summaries: the evidence of every ended stage, stored right after the move that ended it.

``FlagService`` tells ``note`` of every committed write; the work happens on a worker thread,
so no move waits for it (a kill-all of 200 flags is 200 writes, not 200 writes and 200 metric
reads). For each write the worker reads that write's audit entry: when the flag left a stage
(advance, complete, rollback, set, kill, restore, delete), it reads the stage's evidence and
stores its summary under the stage's epoch, once (a repeat or a second process changes
nothing), then lets the stage's running totals expire with the rollups. A failure is logged and
never reaches the move, which was committed before any of this began.

A restore leaves the summaries to the snapshot (``replace``), so snapshot and restore are exact;
a delete takes them with the flag. ``drain`` waits for the queue (the CLI before it exits).
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from rollout.core import bounds
from rollout.core.evidence import ArmStats, Evidence
from rollout.core.gates import STRICTNESS, Scope, read_gates
from rollout.core.history import AuditMove, ended_by, serving_epoch
from rollout.core.model import Flag
from rollout.core.schema import flag_from_dict
from rollout.core.units import render_instant, render_percent
from rollout.services.gates import arm_to_dict, gate_summary_to_dict
from rollout.storage.history import HistoryStore
from rollout.storage.metrics import MetricsStore

log = logging.getLogger("rollout.summaries")

IDLE_SECONDS = 2.0  # the worker thread ends when idle this long, and starts again on demand
# The stage's kill bound (a confidence sequence, core.bounds), so the interval and the gate agree.
INTERVAL_ALPHA = STRICTNESS[Scope.STAGE].fail_alpha
REFERENCE_CRITICAL = 0.10  # DESIGN §4's error_rate critical: the prior of a flag without the gate


def error_critical(flag: Flag) -> float:
    """The critical error rate the flag's stage bound is tuned at."""
    return next((g.critical for g in flag.gates if g.metric == "error_rate"), REFERENCE_CRITICAL)


def arm_summary(stats: ArmStats, critical: float = REFERENCE_CRITICAL) -> dict[str, Any]:
    """The arm's figures (business values included), and its error rate's always-valid bounds
    at the stage's kill alpha."""
    interval = None
    if stats.samples:
        errors = min(stats.errors, stats.samples)
        low, high = bounds.rate_bounds(errors, stats.samples, INTERVAL_ALPHA, critical)
        interval = {"low": low, "high": high, "alpha": INTERVAL_ALPHA}
    return {**arm_to_dict(stats), "error_rate_interval": interval}


def summarize(flag: Flag, evidence: Evidence, move: AuditMove | None) -> dict[str, Any]:
    """The summary of ``flag``'s stage (the flag as it stood before ``move`` ended it; with no
    move, the stage still running, as the report shows it).

    ``values`` (per arm) are the business values' count, mean and sd (issue 10).
    """
    status = flag.status
    index = flag.stage
    stage = flag.stages[index] if index is not None and index < len(flag.stages) else None
    return {
        "epoch": flag.stage_started_at,
        "stage": flag.stage,
        "stages": len(flag.stages),
        "percent": render_percent(flag.percent_bp),
        "state": str(flag.state),
        "started_at": render_instant(flag.stage_started_at),
        "ended_at": None if move is None else render_instant(move.at),
        "ended_by": None if move is None else ended_by(move),
        "by": None if move is None else move.actor,
        "reason": None if move is None else move.reason,
        "min_samples": stage.min_samples if stage is not None else None,
        "arms": {
            "treatment": arm_summary(evidence.stage.treatment, error_critical(flag)),
            "control": arm_summary(evidence.stage.control, error_critical(flag)),
        },
        "memory_mb": evidence.memory_mb,
        "gates": [gate_summary_to_dict(s) for s in read_gates(flag, evidence)],
        "status": None
        if status is None
        else {"decision": status.decision, "why": status.why, "at": render_instant(status.at)},
    }


class SummaryService:
    def __init__(self, store: HistoryStore, metrics: MetricsStore) -> None:
        self._store = store
        self._metrics = metrics
        self._queue: deque[tuple[str, int | None]] = deque()
        self._busy = 0  # queued or being written
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        atexit.register(_drain_at_exit, weakref.ref(self))

    # -- the listener ------------------------------------------------------------------------

    def after_write(self, key: str, flag: Flag | None) -> None:
        """A committed write of ``key`` (None: deleted). Returns at once, never raises."""
        with self._cond:
            self._queue.append((key, None if flag is None else flag.version))
            self._busy += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="rollout-summaries", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until every noted write has been handled; False if ``timeout`` ran out."""
        with self._cond:
            return self._cond.wait_for(lambda: self._busy == 0, timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._cond.wait_for(lambda: bool(self._queue), IDLE_SECONDS):
                    self._thread = None
                    return
                key, version = self._queue.popleft()
            try:
                self.handle(key, version)
            except Exception:  # a summary must never take the worker down with it
                log.exception("summary of %s (version %s) failed", key, version)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    # -- the work ----------------------------------------------------------------------------

    def handle(self, key: str, version: int | None) -> str | None:
        """Summarize the stage that the write ``version`` of ``key`` ended (None: a delete).

        Returns what was done: 'summarized', 'exists', 'forgotten', or None (no stage ended).
        """
        move = self._store.entry(key, version=version)
        if move is None:
            return None
        epoch = serving_epoch(move.before)
        if move.after is None:
            self._store.forget(key, epoch)
            return "forgotten"
        if epoch is None or epoch == serving_epoch(move.after):
            return None
        outcome = "exists"
        if move.action != "restore":
            assert move.before is not None
            flag = flag_from_dict(move.before)
            evidence = self._metrics.evidence(
                key, epoch, now=move.at / 1000, windows_ms=[g.window_ms for g in flag.gates]
            )
            if self._store.add_summary(key, epoch, summarize(flag, evidence, move)):
                outcome = "summarized"
        self._store.end_stage(key, epoch)
        return outcome

    # -- reads and restore -------------------------------------------------------------------

    def of(self, key: str) -> list[dict[str, Any]]:
        return self._store.summaries(key)

    def of_flags(self, keys: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        return self._store.all_summaries(keys)

    def replace(self, key: str, summaries: Iterable[Mapping[str, Any]]) -> None:
        self.drain()  # the restore's own writes are noted first: none may land after this
        self._store.replace_summaries(key, summaries)


def _drain_at_exit(ref: weakref.ref[SummaryService]) -> None:
    # A CLI move is noted just before the process exits: give its summary a moment to land.
    service = ref()
    if service is not None:
        service.drain(2.0)
