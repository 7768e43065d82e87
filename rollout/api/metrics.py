"""Prometheus figures, read from Redis on every scrape so that any number of workers agree.

Nothing is counted in process: a gunicorn worker that answers the scrape reads the same Redis
as every other. The collector reads the flags once per scrape and hands them to each *source*;
a source is a function ``(services, flags) -> metric families``. To add figures (per-arm
samples, controller counters), write a source and append it to ``SOURCES`` or pass it to
``RolloutCollector(services, sources=...)``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from rollout.core import histogram
from rollout.core.errors import RolloutError
from rollout.core.model import Flag, State
from rollout.services.container import Services

log = logging.getLogger(__name__)

MetricSource = Callable[[Services, Sequence[Flag]], Iterable[Metric]]


def flag_figures(services: Services, flags: Sequence[Flag]) -> Iterator[Metric]:
    """Exposure, lifecycle state and version of every flag."""
    percent = GaugeMetricFamily(
        "rollout_flag_percent", "Current exposure of the flag, 0-100.", labels=["flag"]
    )
    state = GaugeMetricFamily(
        "rollout_flag_state",
        "1 for the flag's current lifecycle state, 0 for the others.",
        labels=["flag", "state"],
    )
    version = GaugeMetricFamily(
        "rollout_flag_version", "Version of the flag (increments on every write).", labels=["flag"]
    )
    for flag in flags:
        percent.add_metric([flag.key], flag.percent_bp / 100)
        for each in State:
            state.add_metric([flag.key, str(each)], 1.0 if flag.state is each else 0.0)
        version.add_metric([flag.key], flag.version)
    yield percent
    yield state
    yield version


def arm_figures(services: Services, flags: Sequence[Flag]) -> Iterator[Metric]:
    """Per flag and arm, over the current stage: samples, errors and p95 latency."""
    samples = GaugeMetricFamily(
        "rollout_arm_samples", "Outcomes recorded in the current stage.", labels=["flag", "arm"]
    )
    errors = GaugeMetricFamily(
        "rollout_arm_errors", "Errors recorded in the current stage.", labels=["flag", "arm"]
    )
    p95 = GaugeMetricFamily(
        "rollout_arm_p95_seconds", "p95 latency in the current stage.", labels=["flag", "arm"]
    )
    mismatch = GaugeMetricFamily(
        "rollout_sample_ratio_mismatch",
        "1 while the stage's arms are off the split the percent implies, else 0.",
        labels=["flag"],
    )
    for flag in flags:
        if flag.stage_started_at is None:
            continue  # never rolled out: no evidence to show (a killed flag keeps its own)
        evidence = services.gates.evidence(flag)
        stage = evidence.stage
        mismatch.add_metric([flag.key], 1.0 if services.gates.srm(flag, evidence).mismatch else 0.0)
        for arm, stats in (("treatment", stage.treatment), ("control", stage.control)):
            samples.add_metric([flag.key, arm], stats.samples)
            errors.add_metric([flag.key, arm], stats.errors)
            value = histogram.percentile(stats.latency, 0.95)
            if value is not None and math.isfinite(value):
                p95.add_metric([flag.key, arm], value / 1000)
    yield samples
    yield errors
    yield p95
    yield mismatch


def controller_figures(services: Services, flags: Sequence[Flag]) -> Iterator[Metric]:
    """The controller's counters (kept in Redis by the leader) and whether a leader holds."""
    figures = services.health.controller()
    for name, help_text in (
        ("ticks", "Controller ticks."),
        ("advances", "Advances (and completions) made by the controller."),
        ("holds", "Hold decisions."),
        ("kills", "Automatic kills."),
    ):
        family = CounterMetricFamily(f"rollout_controller_{name}", help_text, labels=[])
        family.add_metric([], getattr(figures, name))
        yield family
    alive = GaugeMetricFamily(
        "rollout_controller_leader_alive", "1 while a controller holds the leader lock.", labels=[]
    )
    alive.add_metric([], 1.0 if figures.leader else 0.0)
    yield alive
    dropped = CounterMetricFamily(
        "rollout_sdk_dropped_samples", "Outcomes SDK clients could not keep.", labels=[]
    )
    dropped.add_metric([], services.health.sdk_dropped())
    yield dropped
    values = CounterMetricFamily(
        "rollout_sdk_dropped_values",
        "Business values SDK clients refused: bad names or numbers, past 20 names per flag.",
        labels=[],
    )
    values.add_metric([], services.health.sdk_values_dropped())
    yield values


def notifier_figures(services: Services, flags: Sequence[Flag]) -> Iterator[Metric]:
    """Per destination: events delivered, failed attempts, events dropped, and the backlog."""
    families = {
        name: CounterMetricFamily(f"rollout_notify_{name}", text, labels=["destination"])
        for name, text in (
            ("delivered", "Events delivered (2xx)."),
            ("failed", "Failed delivery attempts (each retry counts)."),
            ("dropped", "Events dropped after 24 h of failures."),
        )
    }
    backlog = GaugeMetricFamily(
        "rollout_notify_backlog", "Events read and not yet delivered.", labels=["destination"]
    )
    for destination in services.notify.destinations():
        stats = services.notify.stats(destination.name)
        for name, family in families.items():
            family.add_metric([destination.name], float(stats[name] or 0))
        backlog.add_metric([destination.name], float(stats["backlog"] or 0))
    yield from families.values()
    yield backlog


SOURCES: list[MetricSource] = [flag_figures, arm_figures, controller_figures, notifier_figures]


class RolloutCollector(Collector):
    def __init__(self, services: Services, sources: Sequence[MetricSource] | None = None) -> None:
        self.services = services
        self.sources = list(SOURCES if sources is None else sources)

    def describe(self) -> Iterable[Metric]:
        # Registering must not touch Redis; an empty description means "collect at scrape".
        return []

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "rollout_storage_up", "1 if Redis answered this scrape, else 0.", labels=[]
        )
        unreadable = GaugeMetricFamily(
            "rollout_flags_unreadable", "Stored flags that cannot be decoded.", labels=[]
        )
        try:
            flags, problems = self.services.flags.list_with_problems()
        except RolloutError as error:
            # A scrape must still answer when Redis is down: that is when it matters most.
            log.warning("metrics: cannot read flags: %s", error)
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        unreadable.add_metric([], len(problems))
        yield up
        yield unreadable
        for source in self.sources:
            try:
                yield from list(source(self.services, flags))
            except RolloutError as error:
                log.warning("metrics: source %s failed: %s", source.__name__, error)


def build_registry(
    services: Services, sources: Sequence[MetricSource] | None = None
) -> CollectorRegistry:
    """A registry per app: several apps (tests, workers) never collide in the global one."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RolloutCollector(services, sources))
    return registry
