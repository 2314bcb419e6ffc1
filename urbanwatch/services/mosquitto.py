"""The managed Mosquitto broker: its config, password and ACL files, TLS, and MQTT probes.

Started as root, Mosquitto drops to the unprivileged `mosquitto` system user before it reads
its password, ACL and TLS files or writes its persistence, and again on every reload. So then
its folder is not ``<state>/mosquitto`` (the state folder is 0700, and may lie in a home only
root can enter) but one under that user's home, named after the state folder, owned by that
user and 0700, with its own copies of the TLS files; the ``origin`` file in it names the
folder under the state folder it stands in for. Without that user, a root broker keeps
running as root (``user root``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import signal
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from devices.private_paths import private_dir, private_file
from urbanwatch.durable_file import replace_durably
from urbanwatch.services.managed_service import ManagedService, ServiceError
from urbanwatch.services.ports import HOST

# A client sending a larger packet is disconnected before the broker reads it; readings are far
# smaller (ingest dead-letters payloads above `ingest.max_payload_bytes`, 64 KiB by default).
MAX_PACKET_BYTES = 256 << 10
# What the broker queues for one client at most (with `max_queued_messages`, whichever first).
MAX_QUEUED_BYTES = 256 << 20
BROKER_USER = "mosquitto"  # made by Debian's package; its home is Mosquitto's own folder
ORIGIN = "origin"  # in a moved broker folder: the folder under the state folder it stands for


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
        self.user = broker_user()
        self.origin = self.dir  # <state>/…/mosquitto, where the files are unless moved
        if self.user is not None:
            self.dir = reachable_dir(self.user, self.dir)

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
        self._take_dir()
        user = f"user {self.user.pw_name}\n" if self.user else ""
        if os.geteuid() == 0 and self.user is None:
            user = "user root\n"  # no unprivileged user to drop to
        listener = f"listener {self.port} {self.host}\n"
        if self.tls is not None:
            listener += "".join(f"{option} {self._own_copy(path, name)}\n"
                                for option, path, name in self._tls_files())
        if self.allow_anonymous:
            auth = "allow_anonymous true\n"
        else:
            for path in (self.password_path, self.acl_path):  # nobody gets in until installed
                if not path.exists():
                    self._write(path, "")
            auth = (f"allow_anonymous false\npassword_file {self.password_path}\n"
                    f"acl_file {self.acl_path}\n")
        self._write(self.config_path, (  # read again on every reload, as the broker's user
            f"{user}{listener}{auth}"
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
        ))
        if self.user is not None:  # opened (and reopened on reload) by the broker's user
            private_file(self.log_path)
            os.chown(self.log_path, self.user.pw_uid, self.user.pw_gid)

    def _take_dir(self) -> None:
        """Make the broker's folder its user's (and say which state folder it serves)."""
        private_dir(self.dir)
        if self.user is not None:
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
            if not (self.dir / ORIGIN).exists():
                self._write(self.dir / ORIGIN, f"{self.origin}\n")

    def _tls_files(self) -> list[tuple[str, Path, str]]:
        assert self.tls is not None
        files = [("certfile", self.tls.cert, "tls-cert.pem"),
                 ("keyfile", self.tls.key, "tls-key.pem")]
        return files + ([("cafile", self.tls.ca, "tls-ca.pem")] if self.tls.ca else [])

    def _own_copy(self, path: Path, name: str) -> Path:
        """`path` itself, or when the broker runs as its own user, a copy of it that user may
        read (the operator's key may lie anywhere)."""
        if self.user is None:
            return path
        self._write(self.dir / name, path.read_text())
        return self.dir / name

    def _write(self, path: Path, text: str) -> None:
        write_private(path, text, self.user)

    def install_auth(self, passwords: str, acl: str) -> bool:
        """Write the password and ACL files; if they changed and the broker runs, reload it.

        Returns whether anything changed. The reload happens in the broker shortly after.
        """
        if self.allow_anonymous:
            raise ServiceError("this broker admits anonymous clients; it has no user files")
        self._take_dir()
        changed = False
        for path, text in ((self.password_path, passwords), (self.acl_path, acl)):
            with contextlib.suppress(OSError):
                if path.read_text() == text:
                    continue
            self._write(path, text)
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


def broker_user() -> pwd.struct_passwd | None:
    """The user the broker drops to: `BROKER_USER` when we are root and it exists; None when
    the broker runs as whoever starts it."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(BROKER_USER)
    except KeyError:
        return None


def reachable_dir(user: pwd.struct_passwd, wanted: Path) -> Path:
    """A folder for the broker of `wanted` (its folder under the state folder) that `user`
    can reach whatever the state folder's parents: under `user`'s home, named after
    `wanted`, so each state folder keeps its own broker files across restarts."""
    digest = hashlib.sha256(str(wanted).encode()).hexdigest()[:16]
    return Path(user.pw_dir) / f"urbanwatch-{digest}"


def write_private(path: Path, text: str, owner: pwd.struct_passwd | None = None) -> None:
    """Replace `path` durably with an owner-only file holding `text`, owned by `owner` (if
    given) rather than by us."""
    def write(f: BinaryIO) -> None:
        if owner is not None:
            os.fchown(f.fileno(), owner.pw_uid, owner.pw_gid)
        f.write(text.encode())

    replace_durably(path, write)


def _recv_exact(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data
