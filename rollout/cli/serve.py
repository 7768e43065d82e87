"""``rollout serve``: the admin API under gunicorn, plus a controller and a notifier beside it.

serve is a small supervisor: it makes sure Redis is there (the embedded server unless
ROLLOUT_REDIS_URL is set), makes sure an admin token exists, then runs gunicorn and the
controller as child processes. SIGTERM or Ctrl-C stops both cleanly; if either dies, the other
is stopped too and serve exits non-zero, so a process manager can restart the pair.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from rollout.cli.context import CliState, pass_state
from rollout.cli.errors import CliError
from rollout.settings import Settings, load_settings
from rollout.wiring import check_reachable, public_url, server_url

TOKEN_FILE = "admin-token"


def ensure_admin_token(data_dir: Path) -> tuple[str, bool]:
    """The admin token kept in the data dir (mode 0600): (token, created now?)."""
    path = data_dir / TOKEN_FILE
    if path.exists():
        token = path.read_text(encoding="ascii").strip()
        if len(token) >= 16:
            return token, False
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(32)
    # Created 0600 from the start: the token is never readable by others, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(token + "\n")
    return token, True


def child_environment(settings: Settings, url: str) -> tuple[dict[str, str], str | None]:
    """Environment for gunicorn and the controller, and the token file to tell about (if any)."""
    env = dict(os.environ)
    env["ROLLOUT_REDIS_URL"] = url  # every child on the very same server
    note = None
    if not settings.admin_tokens:
        token, created = ensure_admin_token(settings.data_dir)
        env["ROLLOUT_ADMIN_TOKENS"] = f"admin:{token}"
        note = "created" if created else "reused"
    return env, note


def _stop(processes: list[subprocess.Popen[bytes]], timeout: float = 10.0) -> None:
    for proc in processes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in processes:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="gunicorn worker processes.",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=2,  # more threads only add GIL hand-offs on a small machine (bench/api.py --sweep)
    show_default=True,
    help="Threads per worker (gthread).",
)
@click.option(
    "--no-controller", is_flag=True, help="Serve the API only (a controller runs elsewhere)."
)
@click.option(
    "--no-notifier", is_flag=True, help="No notifier process (one runs elsewhere, or none)."
)
@click.option(
    "--access-log",
    is_flag=True,
    help="Log every request to stdout (off by default: it costs ~15% of throughput, and "
    "every write is in the audit log anyway).",
)
@pass_state
def serve(
    state: CliState,
    host: str,
    port: int,
    workers: int,
    threads: int,
    no_controller: bool,
    no_notifier: bool,
    access_log: bool,
) -> None:
    """Serve the admin API (gunicorn) and run the controller beside it."""
    settings = load_settings(redis_url=state.redis_url)
    url = server_url(settings)
    check_reachable(settings, url)  # a wrong service or seed: one line now, not in each child
    env, note = child_environment(settings, url)
    base = f"http://{host}:{port}"
    gunicorn = [
        sys.executable, "-m", "gunicorn",
        "--bind", f"{host}:{port}",
        "--workers", str(workers),
        "--worker-class", "gthread",
        "--threads", str(threads),
        "--graceful-timeout", "10",
        "--no-control-socket",  # gunicorn 27's is one path per user: two serves would clash
        # Trigger URLs carry their secret in the path: the logger class redacts them.
        *(["--access-logfile", "-", "--logger-class", "rollout.cli.accesslog.RedactingLogger"]
          if access_log else []),
        "rollout.wsgi:app",
    ]  # fmt: skip
    processes = [subprocess.Popen(gunicorn, env=env)]
    if not no_controller:
        controller = [sys.executable, "-m", "rollout", "controller"]
        processes.append(subprocess.Popen(controller, env=env))
    if not no_notifier:
        notifier = [sys.executable, "-m", "rollout", "notifier"]
        processes.append(subprocess.Popen(notifier, env=env))
    click.echo(f"rollout serving {base}  (Redis: {public_url(settings.redis_url)})")
    click.echo(f"Dashboard: {base}/  (sign in with an admin or a read token)")
    if note is not None:
        path = settings.data_dir / TOKEN_FILE
        verb = "Created an admin token in" if note == "created" else "Admin token:"
        click.echo(f"{verb} {path} (mode 0600). Use it as a bearer token:")
        click.echo(f'  curl -H "Authorization: Bearer $(cat {path})" {base}/api/v1/flags')
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        while not stopping and all(p.poll() is None for p in processes):
            time.sleep(0.2)
    finally:
        _stop(processes)
    if not stopping:
        raise CliError("a child process exited; stopped the others")
