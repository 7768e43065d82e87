"""The controller: each tick reads every serving flag's gates and acts on ``core.decide``.

``tick(now)`` is one pass and is what tests drive; ``run()`` loops over it while this process
holds the leader lock, and finishes its tick before it stops (SIGTERM sets ``stop``).
``rollout.wiring.build_controller`` builds one over the wired services.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from rollout.core import defaults
from rollout.core.decide import Action, Decision, decide
from rollout.core.errors import LeadershipLost, PreconditionFailed, RolloutError, StorageError
from rollout.core.model import Flag
from rollout.core.outage import Outage
from rollout.core.transitions import serving
from rollout.core.units import to_ms
from rollout.services.container import Lock, TickCounters
from rollout.services.events import EventService
from rollout.services.flags import FlagService
from rollout.services.gates import GateService

log = logging.getLogger("rollout.controller")

ACTOR = "controller"


@dataclass(frozen=True)
class Outcome:
    key: str
    decision: Decision
    acted: bool


class Controller:
    def __init__(
        self,
        flags: FlagService,
        gates: GateService,
        lock: Lock,
        counters: TickCounters,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        interval: float = defaults.CONTROLLER_INTERVAL,
        watch_period: float = defaults.WATCH_PERIOD,
        events: EventService | None = None,
    ) -> None:
        self.flags = flags
        self.gates = gates
        self.lock = lock
        self.counters = counters
        self.clock = clock
        self.monotonic = monotonic  # times the lock's renewals, apart from the flags' clock
        self.interval = interval
        self.watch_period_ms = int(watch_period * 1000)
        self.events = events  # where status events go for notifiers (None: nowhere)
        self.stop = threading.Event()
        self._outage = Outage()  # the lock's Redis: one line when it goes, one when back
        self._leading_since: float | None = None  # monotonic time of the last lock renewal

    # -- one pass ------------------------------------------------------------------------

    def tick(self, now: float | None = None) -> list[Outcome]:
        now = self.clock() if now is None else now
        outcomes = []
        for flag in self.flags.list_flags():
            if not serving(flag):
                continue  # killed (never touched) or a draft (serving no one through the bucket)
            if not self._still_leading():
                log.warning("lost the controller lock mid-tick; stopping this tick")
                break
            try:
                outcomes.append(self._decide_and_act(flag, now))
            except StorageError:
                raise  # Redis is away: the loop logs it once and retries next tick
            except LeadershipLost as error:
                # A newer leader has acted: ours is stale leadership. Stop acting at once;
                # the next tick tries the lock like any other contender.
                log.warning("%s; stepping down", error)
                self._leading_since = None
                break
            except RolloutError as error:
                # One flag's trouble (a deleted flag, a malformed plan) must not stop the others.
                log.warning("flag %s: %s", flag.key, error)
            except Exception:
                # Nor may a bug that one flag's values trigger: the kill switch of every other
                # flag depends on this loop staying up.
                log.exception("flag %s: unexpected error; skipped this tick", flag.key)
        tally = Counter(o.decision.action for o in outcomes if o.acted)
        self.counters.add(
            {
                "ticks": 1,
                "kills": tally[Action.KILL],
                "advances": tally[Action.ADVANCE] + tally[Action.COMPLETE],
                "holds": tally[Action.HOLD],
            },
            heartbeat_ms=to_ms(now),
        )
        return outcomes

    def _decide_and_act(self, flag: Flag, now: float, *, retry: bool = True) -> Outcome:
        """Decide on ``flag`` as read; if it changed before the act, decide once more at once.

        The evidence, the decision and the write all see the tick's ``now``: a window read at
        one instant and a bake judged at another could disagree about the same stage.
        """
        at = to_ms(now)
        evidence = self.gates.evidence(flag, now=now)
        readings = self.gates.readings(flag, evidence)
        decision = decide(
            flag,
            readings,
            at,
            stage_samples=evidence.stage.treatment.samples,
            watch_period_ms=self.watch_period_ms,
            srm=self.gates.srm(flag, evidence),
        )
        if self.events is not None:
            # Holds and approvals once per stage; a kill's readings before the kill lands.
            self.events.note(flag, decision, at, actor=ACTOR)
        try:
            # Every action applies only to the version that was judged: if an operator moved
            # the flag meanwhile, the evidence belongs to another stage or to before a revive.
            if decision.action is Action.KILL:
                self.flags.kill(
                    flag.key,
                    reason=decision.why,
                    actor=ACTOR,
                    if_version=flag.version,
                    now=at,
                    token=self.lock.token,
                )
                log.warning("killed %s: %s", flag.key, decision.why)
            elif decision.action in (Action.ADVANCE, Action.COMPLETE):
                moved = self.flags.advance(
                    flag.key,
                    actor=ACTOR,
                    reason=decision.why,
                    force=True,
                    if_version=flag.version,
                    now=at,
                    token=self.lock.token,
                )
                log.info("%s %s to %s", decision.action, flag.key, moved.state)
        except PreconditionFailed:
            fresh = self.flags.get(flag.key)
            # Moved meanwhile: decide once more, unless the move was a kill or back to draft,
            # which the controller never touches (not even with a status word).
            if retry and serving(fresh):
                return self._decide_and_act(fresh, now, retry=False)
            return Outcome(flag.key, decision, acted=False)
        self._record_status(flag, decision, at)
        return Outcome(flag.key, decision, acted=True)

    def _record_status(self, flag: Flag, decision: Decision, at: int) -> None:
        """Store the decision's word for operators, unless the flag already shows it."""
        word = decision.status_word
        status = flag.status
        if status is None or (status.decision, status.why) != (word, decision.why):
            self.flags.record_status(flag.key, word, decision.why, now=at, token=self.lock.token)

    # -- the loop ------------------------------------------------------------------------

    def _still_leading(self) -> bool:
        """Renew the lock when a long tick has used a third of its TTL; False if it is lost.

        Outside ``run`` (a test's direct ``tick``) nothing was taken, and nothing is checked.
        """
        if self._leading_since is None:
            return True
        if self.monotonic() - self._leading_since < self.lock.ttl_ms / 3000:
            return True
        return self.lead()

    def lead(self) -> bool:
        try:
            leader = self.lock.acquire()
            self._leading_since = self.monotonic() if leader else None
            if self._outage.succeeded():
                log.warning("Redis reachable again")
            return leader
        except StorageError as error:
            self._leading_since = None
            if self._outage.failed():
                log.error("Redis unreachable (%s); not leading until it answers", error)
            return False

    def run_once(self) -> list[Outcome] | None:
        """One tick if this process can lead; None when another controller leads."""
        if not self.lead():
            return None
        try:
            return self.tick()
        finally:
            self.release()

    def run(self) -> None:
        leading = False
        try:
            while not self.stop.is_set():
                # Pacing is real time, whatever clock the lock uses: stop.wait sleeps for real.
                started = time.monotonic()
                now_leading = self.lead()
                if now_leading != leading:
                    log.info("%s the controller lock", "took" if now_leading else "lost")
                    leading = now_leading
                if leading:
                    try:
                        self.tick()
                    except StorageError as error:
                        log.error("tick failed: %s", error)
                self.stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
        finally:
            if leading:
                self.release()

    def release(self) -> None:
        self._leading_since = None
        try:
            self.lock.release()
        except StorageError:
            pass  # the TTL frees it anyway
