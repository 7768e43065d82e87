"""A real HTTP receiver for notifier tests: a server thread on 127.0.0.1 and a free port."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def event_id(self) -> str:
        return self.headers["Rollout-Event-Id"]


@dataclass
class Receiver:
    url: str
    statuses: list[int] = field(default_factory=list)  # answered in turn; then 200
    received: list[Received] = field(default_factory=list)  # every request, any answer
    accepted: list[Received] = field(default_factory=list)  # those answered 2xx
    hold: threading.Event | None = None  # when set: every request waits for it
    hold_after: int = 0  # ... every request after this many
    waiting: threading.Event = field(default_factory=threading.Event)  # a request is held
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ids(self) -> list[str]:
        with self.lock:
            return [r.event_id for r in self.accepted]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            got = Received(dict(self.headers.items()), body)
            if receiver.hold is not None and len(receiver.received) >= receiver.hold_after:
                receiver.waiting.set()
                receiver.hold.wait(30)
            with receiver.lock:
                receiver.received.append(got)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if 200 <= status < 300:
                    receiver.accepted.append(got)
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status < 300 else b"nope")

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serving(
    statuses: list[int] | None = None,
    hold: threading.Event | None = None,
    sock: socket.socket | None = None,
    hold_after: int = 0,
) -> Iterator[Receiver]:
    """A receiver; on ``sock`` (bound, not yet listening) when given."""
    if sock is None:
        server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    else:
        server = ThreadingHTTPServer(sock.getsockname(), BaseHTTPRequestHandler, False)
        server.socket.close()
        server.socket = sock
        server.server_activate()
    _host, port = server.server_address[:2]
    receiver = Receiver(
        f"http://127.0.0.1:{port}/hook/s3cr3t-path",
        list(statuses or []),
        hold=hold,
        hold_after=hold_after,
    )
    server.RequestHandlerClass = _handler(receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        if hold is not None:
            hold.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
