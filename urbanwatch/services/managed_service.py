"""One supervised server process under a state folder: the base of Mosquitto and influxd.

Each service is a child process with a generated config, bound to 127.0.0.1,
with its pid file, config and log under ``<state>/<name>/``.

Errors: ``ServiceError`` → ``MissingBinaryError`` (names the apt package),
``ServiceStartError`` (points at the log file).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from devices.private_paths import private_dir
from urbanwatch.services.ports import HOST, port_open
from urbanwatch.services.processes import alive, die_with_parent, spawn_detached

_SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


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
        private_dir(self.dir)
        self.write_config()
        with open(self.log_path, "ab") as log:
            if detach:
                pid = spawn_detached(self.command(executable), log.fileno())
            else:
                self._proc = subprocess.Popen(
                    self.command(executable), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    start_new_session=True, preexec_fn=die_with_parent(),
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
        while alive(pid):
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

