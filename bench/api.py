"""Requests/s and p50/p99 of ``GET /api/v1/flags/{key}`` and OFREP against ``rollout serve``.

The server is the real thing: ``rollout serve --no-controller`` (gunicorn, gthread workers) on
loopback, on a throwaway real redis-server (bench/_server.py). The load generator is this
process, a second process beside gunicorn's: Python asyncio over raw sockets, HTTP/1.1
keep-alive, CONNECTIONS connections each sending its next request as soon as the last answer is
in (closed loop, no pipelining). Latency is send -> last byte of the body, per request.

The connections are spread evenly over gunicorn's workers (--no-spread keeps them where they
land; see ``Generator.open``), and the CPU that gunicorn, redis-server and the generator spend
per request is read from /proc, to show where the time goes.

Baseline in the same run: ``GET /healthz`` (no token, no Redis) through the same server, the
same connections and the same generator, so the ratio shows what the flag read (auth, one Redis
round trip, decoding, JSON) costs on top of gunicorn + Flask.
Target (issue 3): at least 2,000 req/s with p99 under 20 ms, on this 2-core machine.

OFREP (issue 12), in the same run and over the same connections: ``POST
/ofrep/v1/evaluate/flags/{key}`` (one flag, a context with a targeting key and two attributes)
at >= 0.8x healthz's req/s, and the bulk ``POST /ofrep/v1/evaluate/flags`` over BULK_FLAGS
flags at >= 0.4x. Both are answered from the worker's synced flags, with no Redis round trip.

    .venv/bin/python bench/api.py [--workers N] [--threads N] [--requests N] [--sweep]
                                  [--no-spread]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._proc import connections_per_worker, cpu_seconds, descendants, worker_of
from bench._server import bench_server
from rollout.storage.redis_process import free_port

KEY = "PROMPT_IMPROVER_ENABLED"
TOKEN = "bench-admin-token-0123456789"
CONNECTIONS = 8
REQUESTS = 20_000
WARMUP = 2_000
CHUNKS = 4
# Best of the sweep on this 2-core machine (--sweep): a worker per core, one request thread
# each. More threads only add GIL handoffs (p99 ~12 ms at 1 thread, ~20 ms at 4), not req/s.
WORKERS = 2
THREADS = 1
CPU_PARTS = ("gunicorn", "redis", "generator")
TARGET_RPS = 2_000
TARGET_P99_MS = 20.0
BULK_FLAGS = 50
OFREP_CONTEXT = (
    b'{"context": {"targetingKey": "user-4711", "email": "jo@example.org", "plan": "team"}}'
)
TARGET_OFREP_RATIO = 0.8
TARGET_BULK_RATIO = 0.4


# -- the server ---------------------------------------------------------------------------


@contextlib.contextmanager
def running_serve(
    redis_url: str,
    *,
    workers: int,
    threads: int,
    admin_token: str = TOKEN,
    timeout: float = 30.0,
) -> Iterator[tuple[str, int]]:
    """``rollout serve --no-controller`` on a free loopback port: (base URL, serve's pid).

    Shared with bench/propagation.py. Its stdout (gunicorn's access log) goes to /dev/null:
    nobody reads it, and an unread pipe would block the workers once full.
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    env |= {"ROLLOUT_REDIS_URL": redis_url, "ROLLOUT_ADMIN_TOKENS": f"bench:{admin_token}"}
    with tempfile.TemporaryDirectory(prefix="r-") as tmp:
        env["ROLLOUT_DATA_DIR"] = tmp
        command = [
            sys.executable, "-m", "rollout", "serve", "--no-controller", "--no-notifier",
            "--port", str(port), "--workers", str(workers), "--threads", str(threads),
        ]  # fmt: skip
        serve = subprocess.Popen(
            command,
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # one process group: cleanup reaches gunicorn's workers too
        )
        try:
            _wait_ready(base, serve, timeout)
            yield base, serve.pid
        finally:
            if serve.poll() is None:
                serve.send_signal(signal.SIGTERM)
                try:
                    serve.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(serve.pid, signal.SIGKILL)
                    serve.wait()


def _wait_ready(base: str, serve: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if serve.poll() is not None:
            raise SystemExit(f"rollout serve exited with {serve.returncode} before it was ready")
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=1) as response:
                if response.status == 200:
                    # One worker answered; the warm-up runs before any timing, so a worker
                    # still booting does not land inside the measurement.
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"rollout serve not ready within {timeout} s")


# -- the load generator -------------------------------------------------------------------


@dataclass
class Result:
    seconds: float = 0.0
    latencies_ns: list[int] = field(default_factory=list)
    errors: int = 0
    # CPU seconds spent during the timed phases: gunicorn (master + workers), redis-server,
    # and this process (the load generator). Per request, they say where the time goes.
    cpu: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CPU_PARTS, 0.0))

    @property
    def rps(self) -> float:
        return len(self.latencies_ns) / self.seconds

    def percentile_ms(self, p: float) -> float:
        """Nearest-rank percentile, in ms."""
        ordered = sorted(self.latencies_ns)
        return ordered[max(0, math.ceil(p * len(ordered)) - 1)] / 1e6

    def cpu_us(self, part: str) -> float:
        return self.cpu[part] / len(self.latencies_ns) * 1e6


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Generator:
    """CONNECTIONS keep-alive connections, opened once and used for every phase.

    Baseline and target share the very same connections: gunicorn hands each connection to
    one worker for its whole life, so the split of connections across workers (which decides
    how many cores serve the load) is the same for both.
    """

    def __init__(self, base: str, connections: int = CONNECTIONS) -> None:
        host, _, port = base.removeprefix("http://").partition(":")
        self.host, self.port, self.count = host, int(port), connections
        self.conns: list[Connection] = []

    def request(self, path: str, token: str | None = None, body: bytes | None = None) -> bytes:
        """A GET, or a POST of ``body`` (JSON)."""
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        method, extra = "GET", ""
        if body is not None:
            method = "POST"
            extra = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        return (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{auth}{extra}"
            "Accept: application/json\r\n\r\n"
        ).encode() + (body or b"")

    async def open(self, serve_pid: int, workers: int, spread: bool) -> int:
        """Dial the connections; with ``spread``, redial until each worker holds its share.

        Returns how many dials were needed. gthread workers accept whatever arrives while they
        are idle, so 8 connections dialled at once often all land on one worker, which then
        serves them on one core (one GIL). A load balancer in front of several clients spreads
        them; ``spread`` does the same here, so the figure is the server's, not a coin flip.
        """
        quota = -(-self.count // workers)  # ceil: 8 over 3 workers -> at most 3 each
        held: dict[int, int] = {}
        dials = 0
        while len(self.conns) < self.count:
            dials += 1
            if dials > 50 * self.count:
                raise SystemExit(f"could not spread {self.count} connections over {workers}")
            reader, writer = await asyncio.open_connection(self.host, self.port)
            # One answered request: the connection is now surely accepted by some worker.
            probe = Result()
            self.conns.append((reader, writer))
            await self._send(len(self.conns) - 1, self.request("/healthz"), [1], probe)
            if not spread:
                continue
            try:
                owner = worker_of(serve_pid, self.port, writer.get_extra_info("sockname")[1])
            except OSError:  # no /proc to ask (not Linux): keep it wherever it landed
                continue
            if owner is None or held.get(owner, 0) < quota:
                held[owner or 0] = held.get(owner or 0, 0) + 1
            else:
                self.conns.pop()
                writer.close()
        return dials

    async def close(self) -> None:
        for _, writer in self.conns:
            writer.close()

    async def phase(
        self, request: bytes, count: int, into: Result, pids: dict[str, list[int]]
    ) -> None:
        """``count`` requests over every connection, each sent when its last answer is in."""
        budget = [count]
        cpu = cpu_seconds(pids)
        start = time.perf_counter()
        await asyncio.gather(
            *(self._send(i, request, budget, into) for i in range(len(self.conns)))
        )
        into.seconds += time.perf_counter() - start
        for part, spent in cpu_seconds(pids).items():
            into.cpu[part] += spent - cpu[part]

    async def _send(self, index: int, request: bytes, budget: list[int], into: Result) -> None:
        reader, writer = self.conns[index]
        while budget[0] > 0:
            budget[0] -= 1  # one event loop, one thread: no lock needed
            start = time.perf_counter_ns()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length, close = 0, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            await reader.readexactly(length)
            into.latencies_ns.append(time.perf_counter_ns() - start)
            if head[9:12] != b"200":
                into.errors += 1
            if close:  # the server ended this keep-alive connection: dial again
                writer.close()
                reader, writer = await asyncio.open_connection(self.host, self.port)
                self.conns[index] = (reader, writer)


# -- the bench ----------------------------------------------------------------------------


@dataclass
class Measurement:
    baseline: Result
    flag: Result
    ofrep: Result
    bulk: Result
    split: list[int]
    dials: int


async def _measure(
    base: str, serve_pid: int, redis_pid: int, workers: int, requests: int, spread: bool
) -> Measurement:
    gen = Generator(base)
    try:
        dials = await gen.open(serve_pid, workers, spread)
        pids = {
            "gunicorn": descendants(serve_pid),
            "redis": [redis_pid],
            "generator": [os.getpid()],
        }
        healthz = gen.request("/healthz")
        flag = gen.request(f"/api/v1/flags/{KEY}", TOKEN)
        ofrep = gen.request(f"/ofrep/v1/evaluate/flags/{KEY}", TOKEN, OFREP_CONTEXT)
        bulk = gen.request("/ofrep/v1/evaluate/flags", TOKEN, OFREP_CONTEXT)
        phases = (healthz, flag, ofrep, bulk)
        scratch = Result()
        for request in phases:
            await gen.phase(request, WARMUP // 2, scratch, pids)
        split = connections_per_worker(serve_pid, gen.port)
        results = [Result() for _ in phases]
        # Alternating chunks: all see the same machine (other load comes and goes).
        for _ in range(CHUNKS):
            for request, result in zip(phases, results, strict=True):
                await gen.phase(request, requests // CHUNKS, result, pids)
        return Measurement(*results, split=split, dials=dials)
    finally:
        await gen.close()


def measure(
    redis_url: str,
    redis_pid: int,
    workers: int,
    threads: int,
    requests: int,
    spread: bool = True,
) -> Measurement:
    with running_serve(redis_url, workers=workers, threads=threads) as (base, serve_pid):
        return asyncio.run(_measure(base, serve_pid, redis_pid, workers, requests, spread))


def line(name: str, result: Result) -> str:
    return (
        f"{name:<26} {result.rps:7,.0f} req/s   p50 {result.percentile_ms(0.50):6.2f} ms   "
        f"p99 {result.percentile_ms(0.99):6.2f} ms   errors {result.errors}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=WORKERS)
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument(
        "--sweep", action="store_true", help="first try several --workers/--threads"
    )
    parser.add_argument(
        "--no-spread",
        dest="spread",
        action="store_false",
        help="keep the connections wherever gunicorn accepted them (often all on one worker)",
    )
    args = parser.parse_args()
    with bench_server() as (server, services):
        services.flags.create(
            KEY,
            actor="bench",
            description="Prompt-improver enhancements in the skill loader",
            allow=["qa-alice", "qa-bob"],
            stages=[{"percent": 10, "bake": "3d"}, {"percent": 50, "bake": "2d"}],
        )
        services.flags.advance(KEY, actor="bench")
        for i in range(1, BULK_FLAGS):  # the bulk OFREP answer covers every flag
            services.flags.create(f"BENCH_FLAG_{i:02d}", actor="bench", allow=["qa-alice"])
            services.flags.set_percent(f"BENCH_FLAG_{i:02d}", i * 2, actor="bench")
        redis_pid = server.pid
        assert redis_pid is not None
        if args.sweep:
            print("sweep, 4,000 requests each: workers x threads, GET flag, connections/worker")
            for workers, threads in ((1, 1), (1, 4), (2, 1), (2, 4), (2, 8), (3, 2), (4, 2)):
                m = measure(server.url, redis_pid, workers, threads, 4_000, args.spread)
                print(f"  {line(f'{workers} x {threads}', m.flag)}   {m.split}")
        m = measure(server.url, redis_pid, args.workers, args.threads, args.requests, args.spread)
    print(
        f"rollout serve --no-controller --workers {args.workers} --threads {args.threads} "
        f"(gunicorn gthread), loopback, real redis-server over TCP; {os.cpu_count()} CPUs"
    )
    print(
        f"load generator: this process (not gunicorn's), Python asyncio raw sockets, HTTP/1.1 "
        f"keep-alive, {CONNECTIONS} connections, closed loop; {args.requests:,} requests per "
        f"endpoint in {CHUNKS} alternating chunks, after {WARMUP:,} warm-up"
    )
    how = (
        f"spread by redialling ({m.dials} dials), as a load balancer would"
        if args.spread
        else "as gunicorn accepted them"
    )
    print(f"connections per gunicorn worker: {m.split or 'unknown'}, {how}")
    print(line("baseline GET /healthz", m.baseline))
    named = (
        ("GET /api/v1/flags/{key}", "flag", m.flag),
        ("POST OFREP one flag", "ofrep", m.ofrep),
        (f"POST OFREP bulk, {BULK_FLAGS} flags", "bulk", m.bulk),
    )
    for title, _, result in named:
        print(line(title, result))
    for _, name, result in named:
        print(
            f"ratio {name}/baseline: throughput {result.rps / m.baseline.rps:.2f}x, "
            f"p99 {result.percentile_ms(0.99) / m.baseline.percentile_ms(0.99):.2f}x"
        )
    for name, result in (("healthz", m.baseline), *((n, r) for _, n, r in named)):
        parts = ", ".join(f"{part} {result.cpu_us(part):4.0f}" for part in CPU_PARTS)
        print(f"CPU us per request, {name:<8} {parts}")
    errors = sum(r.errors for r in (m.baseline, m.flag, m.ofrep, m.bulk))
    flag_ok = m.flag.rps >= TARGET_RPS and m.flag.percentile_ms(0.99) < TARGET_P99_MS
    ofrep_ok = m.ofrep.rps >= TARGET_OFREP_RATIO * m.baseline.rps
    bulk_ok = m.bulk.rps >= TARGET_BULK_RATIO * m.baseline.rps
    for text, passed in (
        (f"GET flag >= {TARGET_RPS:,} req/s and p99 < {TARGET_P99_MS:.0f} ms", flag_ok),
        (f"OFREP one flag >= {TARGET_OFREP_RATIO}x healthz", ofrep_ok),
        (f"OFREP bulk ({BULK_FLAGS} flags) >= {TARGET_BULK_RATIO}x healthz", bulk_ok),
        ("no errors", errors == 0),
    ):
        print(f"target: {text} -> {'PASS' if passed else 'MISS'}")
    return 0 if flag_ok and ofrep_ok and bulk_ok and errors == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
