"""`urbanwatch serve` as a separate process: start it, kill it, wait for it, scrape it.

The process is started with the `urbanwatch` script of the running interpreter's
environment, against the services a test's `Settings` name (given as CLI options and
`URBANWATCH_*` variables; a service without a URL is started by the platform itself), and
its output goes to a log file that a failure quotes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.polling import eventually
from urbanwatch.services.ports import free_port
from urbanwatch.settings import Settings

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class PlatformProcess:
    """One `urbanwatch serve` child at a time; `start()` again after a kill or a stop."""

    def __init__(self, settings: Settings, log_path: Path, args: Sequence[str] = ()) -> None:
        self.settings = settings
        self.args = tuple(args)  # more `serve` options, e.g. `--partition 1/2`
        self.api_port = free_port()
        self.log_path = log_path
        self.env = {**os.environ, **self._settings_env()}
        self.starts = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def pid(self) -> int:
        assert self._proc is not None, "not started"
        return self._proc.pid

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        assert not self.running(), "already running"
        s = self.settings
        given = [(option, url) for option, url in
                 (("--mqtt-url", s.mqtt.url), ("--influx-url", s.influx.url)) if url]
        command = [
            str(Path(sys.executable).with_name("urbanwatch")), "serve",
            *(part for pair in given for part in pair),  # a service not given is managed
            "--db-url", s.db_url, "--state-dir", str(s.state_dir),
            "--api-port", str(self.api_port), *self.args,
        ]
        with open(self.log_path, "ab") as log:
            log.write(f"--- start {self.starts + 1} ---\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                command, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        self.starts += 1

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Until `/readyz` says every dependency answers (failing at once if it exited)."""
        async with httpx.AsyncClient(base_url=self.api_url, timeout=2.0) as api:

            async def ready() -> bool:
                assert self.running(), f"urbanwatch serve exited:\n{self.log_tail()}"
                try:
                    return (await api.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, "urbanwatch serve ready", timeout_s, interval_s=0.1)

    def kill(self) -> None:
        """SIGKILL: no flush, no goodbye; the broker keeps what was not acknowledged."""
        assert self._proc is not None and self.running(), "not running"
        self._proc.send_signal(signal.SIGKILL)
        self._proc.wait(timeout=10)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM (a clean stop), then SIGKILL after `timeout_s`; the exit code, or None."""
        if self._proc is None:
            return None
        if self.running():
            self._proc.send_signal(signal.SIGTERM)
            try:
                return self._proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        return self._proc.returncode

    async def metrics(self) -> Samples:
        """`/metrics`, parsed: (sample name, sorted labels) -> value."""
        async with httpx.AsyncClient(base_url=self.api_url, timeout=10.0) as api:
            response = await api.get("/metrics")
        response.raise_for_status()
        return parse_metrics(response.text)

    def rss_bytes(self) -> int:
        """Resident memory of the process now (VmRSS from /proc)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS line")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _settings_env(self) -> dict[str, str]:
        """What the CLI has no option for: topic prefix, client id, database, secrets."""
        s = self.settings
        return {
            "URBANWATCH_MQTT__PORT": str(s.mqtt.port),  # the managed broker's, when not given
            "URBANWATCH_MQTT__TOPIC_PREFIX": s.mqtt.topic_prefix,
            "URBANWATCH_MQTT__CLIENT_ID": s.mqtt.client_id,
            "URBANWATCH_INFLUX__DATABASE": s.influx.database,
        }


@contextlib.asynccontextmanager
async def serving(process: PlatformProcess) -> AsyncIterator[PlatformProcess]:
    """`process` started and ready; stopped after, and it must stop cleanly."""
    process.start()
    try:
        await process.wait_ready()
        yield process
    finally:
        code = process.stop()
    assert code == 0, f"urbanwatch serve did not stop cleanly ({code}):\n{process.log_tail()}"


def parse_metrics(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when absent (a counter that never moved may not be exposed)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)



def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    """The values of every sample called `name`, keyed by its `label` (e.g. by reason)."""
    return {dict(labels)[label]: value for (n, labels), value in samples.items()
            if n == name and label in dict(labels)}
