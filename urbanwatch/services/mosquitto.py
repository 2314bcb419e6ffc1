"""The managed Mosquitto broker: its config, password and ACL files, TLS, and MQTT probes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from urbanwatch.durable_file import replace_durably
from urbanwatch.services.managed_service import ManagedService, ServiceError
from urbanwatch.services.ports import HOST

# A client sending a larger packet is disconnected before the broker reads it; readings are far
# smaller (ingest dead-letters payloads above `ingest.max_payload_bytes`, 64 KiB by default).
MAX_PACKET_BYTES = 256 << 10
# What the broker queues for one client at most (with `max_queued_messages`, whichever first).
MAX_QUEUED_BYTES = 256 << 20


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a TLS listener: its certificate and key, and the CA that signed it."""

    cert: Path
    key: Path
    ca: Path | None = None


class Mosquitto(ManagedService):
    """The broker. Without `allow_anonymous`, clients need a user in `passwd` and may use
    only the topics `acl` gives them; `install_auth` replaces both files and makes a
    running broker reload them (SIGHUP: no restart, removed users are disconnected).
    With `tls`, its one listener speaks TLS only."""

    name, package, scheme = "mosquitto", "mosquitto", "mqtt"

    def __init__(
        self, state_dir: Path, port: int, *, allow_anonymous: bool = False,
        tls: TlsFiles | None = None, **kwargs: Any,
    ) -> None:
        super().__init__(state_dir, port, **kwargs)
        self.allow_anonymous = allow_anonymous
        self.tls = tls

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def password_path(self) -> Path:
        return self.dir / "passwd"

    @property
    def acl_path(self) -> Path:
        return self.dir / "acl"

    def write_config(self) -> None:
        root = "user root\n" if os.geteuid() == 0 else ""
        listener = f"listener {self.port} {self.host}\n"
        if self.tls is not None:
            listener += f"certfile {self.tls.cert}\nkeyfile {self.tls.key}\n"
            listener += f"cafile {self.tls.ca}\n" if self.tls.ca else ""
        if self.allow_anonymous:
            auth = "allow_anonymous true\n"
        else:
            for path in (self.password_path, self.acl_path):  # nobody gets in until installed
                if not path.exists():
                    write_private(path, "")
            auth = (f"allow_anonymous false\npassword_file {self.password_path}\n"
                    f"acl_file {self.acl_path}\n")
        self.config_path.write_text(
            f"{root}{listener}{auth}"
            "persistence true\n"
            f"persistence_location {self.dir}/\n"
            "autosave_interval 1\n"
            "max_queued_messages 1000000\n"
            "max_inflight_messages 1000\n"
            f"max_queued_bytes {MAX_QUEUED_BYTES}\n"
            f"max_packet_size {MAX_PACKET_BYTES}\n"
            "retain_available false\n"  # nothing stays on a topic for whoever comes next
            "set_tcp_nodelay true\n"
            f"log_dest file {self.log_path}\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
            "connection_messages true\n"
        )

    def install_auth(self, passwords: str, acl: str) -> bool:
        """Write the password and ACL files; if they changed and the broker runs, reload it.

        Returns whether anything changed. The reload happens in the broker shortly after.
        """
        if self.allow_anonymous:
            raise ServiceError("this broker admits anonymous clients; it has no user files")
        self.dir.mkdir(parents=True, exist_ok=True)
        changed = False
        for path, text in ((self.password_path, passwords), (self.acl_path, acl)):
            with contextlib.suppress(OSError):
                if path.read_text() == text:
                    continue
            write_private(path, text)
            changed = True
        if changed:
            self.reload()
        return changed

    def reload(self) -> None:
        """SIGHUP: re-read the password and ACL files (a no-op when not running)."""
        pid = self.pid
        if pid is not None and self.is_running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGHUP)

    def answers(self) -> bool:
        return mqtt_answers(self.port, tls=self.tls is not None)


def mqtt_connack(port: int, timeout_s: float = 1.0) -> bool:
    """True if an anonymous MQTT 3.1.1 CONNECT on 127.0.0.1:port gets an accepting CONNACK."""
    return _connack(port, timeout_s, tls=False) == b"\x20\x02\x00\x00"


def mqtt_answers(port: int, timeout_s: float = 1.0, *, tls: bool = False) -> bool:
    """True if a broker on 127.0.0.1:port answers a CONNECT at all (accepted or refused)."""
    ack = _connack(port, timeout_s, tls=tls)
    return len(ack) == 4 and ack[:3] == b"\x20\x02\x00"


def _connack(port: int, timeout_s: float, *, tls: bool) -> bytes:
    """The 4-byte CONNACK of an anonymous CONNECT (TLS unverified: a liveness probe)."""
    client_id = f"uw-probe-{os.getpid()}-{threading.get_ident() % 10000}".encode()
    variable = b"\x00\x04MQTT\x04\x02\x00\x0a"
    body = variable + len(client_id).to_bytes(2, "big") + client_id
    try:
        with contextlib.ExitStack() as stack:
            s = stack.enter_context(socket.create_connection((HOST, port), timeout_s))
            if tls:
                s = stack.enter_context(_probe_tls().wrap_socket(s, server_hostname=HOST))
            s.settimeout(timeout_s)
            s.sendall(bytes([0x10, len(body)]) + body)
            ack = _recv_exact(s, 4)
            s.sendall(b"\xe0\x00")
    except OSError:
        return b""
    return ack


def _probe_tls() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def write_private(path: Path, text: str) -> None:
    """Replace `path` durably with an owner-only file holding `text`."""
    replace_durably(path, lambda f: f.write(text.encode()))


def _recv_exact(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data
