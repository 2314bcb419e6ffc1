"""Fixtures for the alerts shell: a migrated SQL database and a real HTTP webhook receiver.

`sessions` migrates `db_url` (SQLite and PostgreSQL, from `tests/support/postgres.py`) and
yields a session factory. `receiver` is a threaded `http.server` on a free port that answers
its first `fail_first` POSTs with `fail_status`, then 200, and dedups by ``Idempotency-Key``
like a well-behaved integration would.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

T0 = 1_717_200_000_000  # 2024-06-01T00:00:00Z
MIN = 60_000


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Receiver:
    url: str
    fail_first: int = 0
    fail_status: int = 500
    calls: list[Call] = field(default_factory=list)
    effective: dict[str, bytes] = field(default_factory=dict)  # idempotency key → first body
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            status = self.fail_status if len(self.calls) < self.fail_first else 200
            self.calls.append(Call(path, headers, body, status))
            if status == 200:
                self.effective.setdefault(headers["idempotency-key"], body)
            return status


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = state[0].handle(self.path, headers, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.append(Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state[0]
    server.shutdown()
    server.server_close()
    thread.join()
