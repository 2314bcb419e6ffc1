"""Fixtures for the alerts shell: a migrated SQL database, a real HTTP webhook receiver and a
real SMTP server.

`sessions` migrates `db_url` (SQLite and PostgreSQL, from `tests/support/postgres.py`) and
yields a session factory. `receiver` is a threaded `http.server` on a free port that answers
its first `fail_first` POSTs with `fail_status`, then 200, and dedups by ``Idempotency-Key``
like a well-behaved integration would. `smtp_server` is aiosmtpd on a free port, in its own
thread: it keeps every message it accepts, refuses the recipients in `refuse` with 550, and
with `login` set it takes that user and password (AUTH PLAIN or LOGIN, without TLS).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword

from urbanwatch.services.ports import free_port

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


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    data: bytes


@dataclass
class SmtpServer:
    host: str
    port: int
    refuse: set[str] = field(default_factory=set)
    mails: list[Mail] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_RCPT(self, _server, _session, envelope: Envelope, address: str,
                          _options) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server, _session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.mails.append(Mail(envelope.mail_from or "", list(envelope.rcpt_tos), content))
        return "250 OK"


def _smtp(login: tuple[str, str] | None) -> Iterator[SmtpServer]:
    server = SmtpServer("127.0.0.1", free_port())

    def check(_server, _session, _envelope, _mechanism, data) -> AuthResult:
        ok = isinstance(data, LoginPassword) and login is not None and (
            data.login.decode(), data.password.decode()) == login
        if ok:
            server.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)  # a refusal: aiosmtpd answers 535

    options = {"authenticator": check, "auth_require_tls": False} if login else {}
    controller = Controller(server, hostname=server.host, port=server.port, **options)
    controller.start()
    yield server
    controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    yield from _smtp(None)


@pytest.fixture
def smtp_login_server() -> Iterator[SmtpServer]:
    yield from _smtp(("urbanwatch", "mail-secret"))
