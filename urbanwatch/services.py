"""Start and supervise our own Mosquitto and influxd under a state folder.

Each service is a child process with a generated config, bound to 127.0.0.1,
with its pid file, config and log under ``<state>/<name>/``. The same object
serves the CLI (`services up` detaches the children so they outlive it, and a
later `up` adopts them through the pid file) and in-process users (`serve`,
`demo`, test fixtures), which `start()`, `stop()` and `restart()` one service.

Errors: ``ServiceError`` → ``MissingBinaryError`` (names the apt package),
``ServiceStartError`` (points at the log file).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

HOST = "127.0.0.1"
_SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PR_SET_PDEATHSIG = 1


class ServiceError(Exception):
    """A managed service could not be found, started or stopped."""


class MissingBinaryError(ServiceError):
    def __init__(self, binary: str, package: str) -> None:
        self.binary, self.package = binary, package
        super().__init__(
            f"{binary} not found; install it with `apt-get install -y {package}`"
        )


class ServiceStartError(ServiceError):
    pass


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    running: bool
    pid: int | None
    url: str
    log: Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_open(port: int, timeout_s: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout_s):
        return True
    return False


class ManagedService:
    """One supervised server process; subclasses write its config and probe it."""

    name = ""
    package = ""
    scheme = ""

    def __init__(
        self, state_dir: Path, port: int, *, binary: str | Path | None = None,
        ready_timeout_s: float = 20.0,
    ) -> None:
        self.dir = Path(state_dir).resolve() / self.name
        self.host, self.port = HOST, port
        self.binary = str(binary) if binary is not None else self.name
        self.ready_timeout_s = ready_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.dir / f"{self.name}.conf"

    @property
    def log_path(self) -> Path:
        return self.dir / f"{self.name}.log"

    @property
    def pid_path(self) -> Path:
        return self.dir / f"{self.name}.pid"

    # subclass hooks
    def write_config(self) -> None:
        raise NotImplementedError

    def command(self, executable: str) -> list[str]:
        return [executable, "-c", str(self.config_path)]

    def answers(self) -> bool:
        raise NotImplementedError

    # lifecycle
    def start(self, *, detach: bool = False) -> bool:
        """Start the server unless ours already runs; returns True if started now.

        ``detach`` puts it in a new session and leaves it running when this
        process exits; otherwise it is sent SIGTERM if the starting thread dies.
        """
        if self.is_running() and self.answers():
            return False
        if self.pid is not None:
            self.stop()
        executable = self._executable()
        if port_open(self.port):
            raise ServiceStartError(f"{self.name}: port {self.host}:{self.port} is already in use")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.write_config()
        with open(self.log_path, "ab") as log:
            if detach:
                pid = _spawn_detached(self.command(executable), log.fileno())
            else:
                self._proc = subprocess.Popen(
                    self.command(executable), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    start_new_session=True, preexec_fn=_die_with_parent(),
                )
                pid = self._proc.pid
        self.pid_path.write_text(f"{pid}\n")
        self._wait_ready(pid)
        return True

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, wait up to ``timeout_s``, then SIGKILL; a no-op if not running."""
        pid = self.pid
        if pid is not None and self.is_running():
            # its own session, so its pid is its process group: signal any helpers too
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            if not self._wait_exit(pid, timeout_s):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                self._wait_exit(pid, 5.0)
        self._proc = None
        self.pid_path.unlink(missing_ok=True)

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def pid(self) -> int | None:
        if self._proc is not None:
            return self._proc.pid
        with contextlib.suppress(OSError, ValueError):
            return int(self.pid_path.read_text().strip())
        return None

    def is_running(self) -> bool:
        """True if the recorded pid is alive and is our server with our config."""
        pid = self.pid
        if pid is None:
            return False
        if self._proc is not None and self._proc.pid == pid:
            return self._proc.poll() is None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return str(self.config_path).encode() in cmdline

    def status(self) -> ServiceStatus:
        running = self.is_running() and self.answers()
        return ServiceStatus(self.name, running, self.pid if running else None, self.url,
                             self.log_path)

    # helpers
    def _executable(self) -> str:
        path = shutil.which(self.binary) or shutil.which(self.binary, path=_SBIN_PATH)
        if path is None:
            raise MissingBinaryError(self.binary, self.package)
        return path

    def _wait_ready(self, pid: int) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            code = self._exit_code(pid)
            if code is not None:
                self._proc = None
                self.pid_path.unlink(missing_ok=True)
                raise ServiceStartError(
                    f"{self.name} exited with code {code} while starting; "
                    f"see {self.log_path}:\n{self._log_tail()}"
                )
            if self.answers():
                return
            time.sleep(0.05)
        self.stop()
        raise ServiceStartError(
            f"{self.name} did not answer on {self.url} within {self.ready_timeout_s:g} s; "
            f"see {self.log_path}:\n{self._log_tail()}"
        )

    def _exit_code(self, pid: int) -> int | None:
        """The exit code of our child `pid` if it has ended (reaping it), else None."""
        if self._proc is not None and self._proc.pid == pid:
            return self._proc.poll()
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        return os.waitstatus_to_exitcode(status) if done else None

    def _wait_exit(self, pid: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while _alive(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        if self._proc is not None and self._proc.pid == pid:
            # Reap our child for sure: a Go zombie leader may need a moment before waitpid
            # takes it, and an unreaped Popen warns (an error under our test settings).
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)
        else:
            self._exit_code(pid)
        return True

    def _log_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


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


class Influxd(ManagedService):
    name, package, scheme = "influxd", "influxdb", "http"

    def __init__(self, state_dir: Path, port: int, *, rpc_port: int | None = None,
                 **kwargs: object) -> None:
        super().__init__(state_dir, port, **kwargs)  # type: ignore[arg-type]
        self.rpc_port = rpc_port

    def write_config(self) -> None:
        rpc_port = self.rpc_port or free_port()
        disabled = "".join(f"\n[[{s}]]\n  enabled = false\n"
                           for s in ("graphite", "collectd", "opentsdb", "udp"))
        self.config_path.write_text(
            f'reporting-disabled = true\nbind-address = "{self.host}:{rpc_port}"\n'
            f'\n[meta]\n  dir = "{self.dir}/meta"\n'
            f'\n[data]\n  dir = "{self.dir}/data"\n  wal-dir = "{self.dir}/wal"\n'
            '  index-version = "tsi1"\n  query-log-enabled = false\n'
            f'\n[http]\n  bind-address = "{self.host}:{self.port}"\n'
            "  log-enabled = false\n  pprof-enabled = false\n"
            "\n[monitor]\n  store-enabled = false\n"
            '\n[logging]\n  level = "warn"\n  suppress-logo = true\n'
            '\n[continuous_queries]\n  log-enabled = false\n  run-interval = "1s"\n'
            f"{disabled}"
        )

    def command(self, executable: str) -> list[str]:
        return [executable, "run", "-config", str(self.config_path)]

    def answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/ping", timeout=1.0).status_code == 204
        except httpx.HTTPError:
            return False


class Services:
    """The managed Mosquitto + influxd pair of one state folder (or just the ones named in
    `manage`: a service given by URL is not started)."""

    def __init__(self, state_dir: Path, *, mqtt_port: int, influx_port: int,
                 mosquitto_bin: str | Path | None = None,
                 influxd_bin: str | Path | None = None, mqtt_tls: TlsFiles | None = None,
                 manage: frozenset[str] = frozenset({"mosquitto", "influxd"})) -> None:
        self.mqtt = Mosquitto(state_dir, mqtt_port, binary=mosquitto_bin, tls=mqtt_tls)
        self.influx = Influxd(state_dir, influx_port, binary=influxd_bin)
        self._manage = manage
        self._started: list[ManagedService] = []

    @property
    def all(self) -> tuple[ManagedService, ...]:
        return tuple(svc for svc in (self.mqtt, self.influx) if svc.name in self._manage)

    def up(self, *, detach: bool = False) -> list[ServiceStatus]:
        """Start what is not running yet (idempotent); the ones started now are remembered."""
        for svc in self.all:
            svc._executable()  # fail on a missing binary before starting anything
        for svc in self.all:
            if svc.start(detach=detach):
                self._started.append(svc)
        return self.status()

    def down(self) -> None:
        for svc in reversed(self.all):
            svc.stop()

    def status(self) -> list[ServiceStatus]:
        return [svc.status() for svc in self.all]

    def __enter__(self) -> Services:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop only what this context started; adopted servers keep running."""
        for svc in reversed(self._started):
            svc.stop()
        self._started.clear()


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
    """Replace `path` atomically with an owner-only file holding `text`."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _recv_exact(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _spawn_detached(argv: list[str], log_fd: int) -> int:
    """Start `argv` in its own session with no Popen object, which would warn when
    collected while the server it started (on purpose) still runs."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, log_fd, 1),
        (os.POSIX_SPAWN_DUP2, log_fd, 2),
    ]
    return os.posix_spawn(argv[0], argv, os.environ, file_actions=actions, setsid=True)


def _alive(pid: int) -> bool:
    """False once every thread has exited (a zombie waiting to be reaped counts as dead).

    A zombie thread-group leader with other threads still running is alive: Go's
    influxd shows that state while it shuts down.
    """
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return False
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    return not (fields.get("State", "").strip().startswith("Z")
                and fields.get("Threads", "").strip() == "1")


def _die_with_parent():  # type: ignore[no-untyped-def]
    """A preexec hook: SIGTERM the child when the starting thread dies (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def hook() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return hook
