"""How far one node and a 3-master Cluster carry us, measured side by side in one run.

    .venv/bin/python bench/scale.py [--seconds 3] [--processes 1000]

Figures (issue 8, item 7):

- **Metrics ingestion.** Each figure twice: with the flush (one script call per flag and stage)
  and with the baseline it replaced (``PipelinedFlush``: a HINCRBY per field), in the same run
  on the same servers, and their ratio. The flush traffic of ``--processes`` SDK processes, each
  seeing 10 requests a second per gated flag at 10% and 50%, 1% errors, lognormal latency
  (median 20 ms, sigma 0.5), flushing once a second. The real flush code
  (``storage.metrics.MetricsStore``) sends batches built like the recorder's
  (``Batch``/``ArmTally``, ``core.histogram`` buckets); a few sender threads play all the
  processes. Reported: redis-server CPU seconds per second of simulated traffic (``INFO cpu``,
  summed over the primaries), commands/s, the processes one node carries at 50% of a core,
  commands and bytes per flag per flush, and on the Cluster the busiest node's load against the
  share its slots would give it (ideal split).
- **Controller tick at 1,000 flags**, 50 serving with fresh evidence, the rest draft, complete
  past their watch or killed: ms per tick (the status writes count).
- **Fan-out** of one change to 1,000 asyncio subscribers in one process: p50/p99 ms.
- **Full resync of 1,000 flags** in the SDK (load and table update) when nothing changed.

Speed is measured here and never asserted in the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import math
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from redis.crc import key_slot

from rollout.core.histogram import bucket_index
from rollout.settings import Settings
from rollout.storage import rollups
from rollout.storage.connection import client_for_url
from rollout.storage.keys import Keys
from rollout.storage.metrics import Batch, MetricsStore
from rollout.storage.redis_process import RedisProcess
from rollout.wiring import build_controller, build_services
from tests.redis_groups import ClusterGroup

REQUESTS_PER_FLAG = 10  # per process per second
ERROR_RATE = 0.01
SENDERS = 4


@contextmanager
def topologies() -> Iterator[dict[str, tuple[str, list[int]]]]:
    """name -> (URL, ports of the primaries) for one node and a 3-master Cluster."""
    with tempfile.TemporaryDirectory(prefix="rollout-scale-") as tmp:
        single = RedisProcess(Path(tmp) / "single", appendonly=False)
        single.start()
        cluster = ClusterGroup(Path(tmp) / "cluster")
        cluster.start()
        try:
            primaries = [node.port for node in cluster.nodes[: cluster.masters]]
            yield {
                "single": (single.url, [single.port]),
                "cluster": (cluster.url, primaries),
            }
        finally:
            cluster.stop()
            single.stop()


def server_counters(ports: list[int]) -> dict[int, tuple[float, int]]:
    """port -> (CPU seconds used so far, commands processed so far)."""
    import redis

    out = {}
    for port in ports:
        client = redis.Redis("127.0.0.1", port)
        cpu = client.info("cpu")
        stats = client.info("stats")
        out[port] = (
            float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
            int(stats["total_commands_processed"]),
        )
        client.close()
    return out


# -- metrics ingestion ----------------------------------------------------------------------


def process_batch(rng: random.Random, flags: list[str], percent: float) -> Batch:
    """One second of one SDK process: REQUESTS_PER_FLAG requests per flag, as the recorder
    tallies them."""
    batch = Batch()
    for key in flags:
        for _ in range(REQUESTS_PER_FLAG):
            arm = "treatment" if rng.random() < percent else "control"
            tally = batch.tally(key, 1, arm)
            tally.samples += 1
            tally.exposures += 1
            if rng.random() < ERROR_RATE:
                tally.errors += 1
                tally.errors_by_type["TimeoutError"] = (
                    tally.errors_by_type.get("TimeoutError", 0) + 1
                )
            latency = rng.lognormvariate(math.log(20.0), 0.5)
            index = bucket_index(latency)
            tally.latency[index] = tally.latency.get(index, 0) + 1
    return batch


RUNS = itertools.count(1)


class PipelinedFlush:
    """The baseline: the flush before the one-script flush, rebuilt here to be measured in the
    same run. One pipeline per batch; per arm a HINCRBY per non-zero field into the stage's and
    the window's hash and an EXPIRE of the window; per (flag, stage) a BITFIELD and an EXPIRE
    for each history span, and a HINCRBY (+ EXPIRE) per error type. No guard: a batch sent
    again counts again."""

    def __init__(self, client: Any, keys: Keys, ttl: int) -> None:
        self.redis, self.keys, self.ttl = client, keys, ttl

    def flush(self, batch: Batch, *, now: float, process: str) -> None:
        window = int(now // 10)
        pipe = self.redis.pipeline(transaction=False)
        for (key, epoch, arm), tally in batch.tallies.items():
            stage = self.keys.stage_metrics(key, epoch, arm)
            current = self.keys.window_metrics(key, epoch, window, arm)
            fields = {"n": tally.samples, "e": tally.errors, "x": tally.exposures}
            fields.update({f"t:{name}": n for name, n in tally.errors_by_type.items()})
            fields.update({f"b:{index}": n for index, n in tally.latency.items()})
            for name, count in fields.items():
                if count:
                    pipe.hincrby(stage, name, count)
                    pipe.hincrby(current, name, count)
            pipe.expire(current, self.ttl)
        stages: dict[tuple[str, int], list[Any]] = {}
        for (key, epoch, arm), t in batch.tallies.items():
            arms = stages.setdefault((key, epoch), [])
            arms.append((arm, t.samples, t.errors, t.exposures, t.latency, t.errors_by_type))
        for (key, epoch), arms in stages.items():
            for res in (rollups.FINE, rollups.COARSE):
                parts = rollups.tally_parts(self.keys, res, key, epoch, now, arms)
                command: list[Any] = ["BITFIELD", parts.counts, "OVERFLOW", "SAT"]
                for offset, count in parts.offsets:
                    command += ["INCRBY", "u32", f"#{offset}", count]
                pipe.execute_command(*command)
                pipe.expire(parts.counts, self.ttl)
                for name, count in parts.typed:
                    pipe.hincrby(parts.types, name, count)
                if parts.typed:
                    pipe.expire(parts.types, self.ttl)
        pipe.execute()


FLUSHES: dict[str, Callable[[Any, Keys, int], Any]] = {
    "one script": MetricsStore,
    "baseline: pipelined HINCRBY": PipelinedFlush,
}


def flush_cost(batch: Batch, keys: Keys, flush: Callable[[Any, Keys, int], Any]) -> tuple[int, int]:
    """(commands, request bytes) that one flush of ``batch`` sends, counted on a recording
    pipeline (the same code path, nothing sent)."""
    recorded: list[tuple[Any, ...]] = []

    class Recording:
        def __init__(self) -> None:
            self.calls = recorded

        def __getattr__(self, name: str) -> Callable[..., None]:
            def call(*args: Any, **kwargs: Any) -> None:
                if name != "execute":
                    self.calls.append((name, *args, *kwargs.values()))

            return call

    class Client:
        def pipeline(self, **_: Any) -> Recording:
            return Recording()

    # Numbered as the recorder numbers its batches (the marker that makes a retry apply once).
    numbered = dataclasses.replace(batch, sequence=1)
    flush(Client(), keys, 3600).flush(numbered, now=1_000_000.0, process="p")
    size = sum(len(str(part)) + 3 for call in recorded for part in call)
    return len(recorded), size


def ingestion(
    url: str,
    ports: list[int],
    flags: int,
    percent: float,
    args: Any,
    flush: Callable[[Any, Keys, int], Any] = MetricsStore,
) -> dict[str, Any]:
    rng = random.Random(7)
    keys = Keys("scale")
    names = [f"FLAG_{i:03d}" for i in range(flags)]
    client = client_for_url(url, socket_timeout=10)
    # A pool of distinct process-seconds, reused round robin: building 1,000 x seconds batches
    # in Python would measure the bench, not Redis.
    pool = [process_batch(rng, names, percent) for _ in range(64)]
    commands, size = flush_cost(pool[0], keys, flush)
    total = args.processes * args.seconds
    # Each process numbers its batches upwards (the flush marker): every run goes on from the
    # last, or its batches would be taken for retries of an earlier run's and skipped.
    first = next(RUNS) * 1_000_000
    before = server_counters(ports)
    started = time.perf_counter()
    counter = iter(range(total))
    lock = threading.Lock()

    def sender() -> None:
        own = client_for_url(url, socket_timeout=10)
        own_store = flush(own, keys, 3600)
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                break
            sequence = first + index // args.processes
            own_store.flush(
                dataclasses.replace(pool[index % len(pool)], sequence=sequence),
                now=1_000_000.0 + index // args.processes,
                process=f"p{index % args.processes}",
            )
        own.close()

    threads = [threading.Thread(target=sender) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    after = server_counters(ports)
    client.close()
    cpu = {port: after[port][0] - before[port][0] for port in ports}
    cmds = sum(after[port][1] - before[port][1] for port in ports)
    cpu_per_second = sum(cpu.values()) / args.seconds  # CPU-seconds per simulated second
    busiest = max(cpu.values()) / args.seconds
    result = {
        "cpu_per_sim_second": cpu_per_second,
        "busiest_node_cpu": busiest,
        "commands_per_sim_second": cmds / args.seconds,
        "wall_seconds": wall,
        "processes_at_half_core": int(args.processes * 0.5 / busiest) if busiest else None,
        "commands_per_flag_flush": commands / flags,
        "bytes_per_flag_flush": size / flags,
    }
    if len(ports) > 1:
        result["busiest_vs_ideal"] = busiest_vs_ideal(cpu, names, keys, ports, url)
    return result


def busiest_vs_ideal(
    cpu: dict[int, float], names: list[str], keys: Keys, ports: list[int], url: str
) -> float:
    """The busiest node's CPU over what its share of the flags' slots would give it."""
    client = client_for_url(url)
    owner: dict[int, int] = {}
    for name in names:
        node = client.get_node_from_key(keys.stage_metrics(name, 1, "control"))
        owner[key_slot(keys.stage_metrics(name, 1, "control").encode())] = node.port
    client.close()
    share = {port: 0 for port in ports}
    for name in names:
        share[owner[key_slot(keys.stage_metrics(name, 1, "control").encode())]] += 1
    total_cpu = sum(cpu.values())
    ratios = []
    for port in ports:
        if share[port]:
            ideal = total_cpu * share[port] / len(names)
            ratios.append(cpu[port] / ideal)
    return max(ratios)


# -- controller tick, fan-out, resync --------------------------------------------------------


def controller_tick(url: str) -> dict[str, float]:
    settings = Settings(_env_file=None, redis_url=url, key_prefix="tick")  # type: ignore[call-arg]
    services = build_services(settings)
    flags = services.flags
    gates = [{"metric": "error_rate", "warn": 0.05, "critical": 0.5, "min_samples": 100}]
    plan = [{"percent": 10, "bake": "1h"}, {"percent": 100}]
    for i in range(1000):
        key = f"F{i:04d}"
        flags.create(key, actor="bench", gates=gates, stages=plan)
        if i < 50:
            flags.advance(key, actor="bench")
        elif i < 300:
            flags.advance(key, actor="bench")
            flags.kill(key, reason="bench", actor="bench")
    controller = build_controller(services)
    metrics = services.gates.metrics
    times = []
    for _ in range(8):
        batch = Batch()
        for i in range(50):
            flag = flags.get(f"F{i:04d}")
            for arm in ("control", "treatment"):
                tally = batch.tally(flag.key, flag.stage_started_at or 0, arm)
                tally.samples, tally.errors = 500, 2
        metrics.flush(batch, now=services.clock(), process="bench")
        started = time.perf_counter()
        controller.tick()
        times.append((time.perf_counter() - started) * 1000)
    services.close()
    return {"tick_ms_median": statistics.median(times[1:]), "tick_ms_max": max(times[1:])}


def fan_out(url: str, ports: list[int], subscribers: int = 1000) -> dict[str, float]:
    """One process, ``subscribers`` asyncio connections (spread over the primaries), each with a
    reader task of its own, as 1,000 SDK followers would be; 5 changes published, 0.2 s apart."""
    import redis.asyncio as aredis

    channel = "scale:changes"
    rounds = 5

    async def run() -> list[float]:
        clients = [
            aredis.Redis(host="127.0.0.1", port=ports[i % len(ports)]) for i in range(subscribers)
        ]
        pubsubs = [c.pubsub(ignore_subscribe_messages=True) for c in clients]
        await asyncio.gather(*(p.subscribe(channel) for p in pubsubs))
        sent: list[float] = []
        latencies: list[float] = []

        async def reader(p: Any) -> None:
            seen = 0
            async for message in p.listen():
                if message["type"] == "message":
                    latencies.append((time.perf_counter() - sent[seen]) * 1000)
                    seen += 1
                    if seen == rounds:
                        return

        readers = [asyncio.create_task(reader(p)) for p in pubsubs]
        await asyncio.sleep(1.0)  # every reader is waiting on its socket
        publisher = aredis.Redis(host="127.0.0.1", port=ports[0])
        for _ in range(rounds):
            sent.append(time.perf_counter())
            await publisher.publish(channel, "x")
            await asyncio.sleep(0.2)
        await asyncio.wait_for(asyncio.gather(*readers), 30)
        for p in pubsubs:
            await p.aclose()
        for c in [*clients, publisher]:
            await c.aclose()
        return latencies

    latencies = sorted(asyncio.run(run()))
    return {
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1],
    }


def resync(url: str) -> dict[str, float]:
    from rollout.sdk.client import RolloutClient
    from rollout.storage.flags import FlagStore

    client = RolloutClient(url, key_prefix="tick", environ={}, start=True)
    client.wait_synced(10)
    follower = client._sync.follower
    store = FlagStore(client._redis(), Keys("tick"))
    times = []
    for _ in range(10):
        started = time.perf_counter()
        follower._load(store)
        times.append((time.perf_counter() - started) * 1000)
    client.close()
    return {"resync_ms_median": statistics.median(times), "flags": len(client.known_flags())}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--processes", type=int, default=1000)
    args = parser.parse_args()
    with topologies() as where:
        for name, (url, ports) in where.items():
            print(f"== {name} ({len(ports)} primar{'y' if len(ports) == 1 else 'ies'})")
            for flags in (10, 50):
                for percent in (0.10, 0.50):
                    head = f"ingestion {args.processes} procs x {flags} flags at {percent:.0%}"
                    measured = {}
                    for label, flush in FLUSHES.items():
                        figures = measured[label] = ingestion(
                            url, ports, flags, percent, args, flush
                        )
                        shown = "  ".join(
                            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in figures.items()
                        )
                        print(f"{head}, {label}: {shown}")
                    now, before = measured.values()
                    ratios = {
                        k: now[k] / before[k]
                        for k in (
                            "busiest_node_cpu",
                            "commands_per_flag_flush",
                            "bytes_per_flag_flush",
                        )
                    }
                    print(
                        f"{head}, one script / baseline: "
                        + "  ".join(f"{k}={v:.2f}x" for k, v in ratios.items())
                    )
            print("controller tick, 1000 flags:", controller_tick(url))
            print("fan-out to 1000 subscribers:", fan_out(url, ports))
            print("SDK full resync, 1000 flags unchanged:", resync(url))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
