"""Start and supervise our own Mosquitto and influxd under a state folder.

The same object serves the CLI (`services up` detaches the children so they
outlive it, and a later `up` adopts them through the pid file) and in-process
users (`serve`, `demo`, test fixtures), which `start()`, `stop()` and
`restart()` one service (see ``urbanwatch.services.managed_service``).
"""

from __future__ import annotations

from pathlib import Path

from urbanwatch.services.influxd import Influxd
from urbanwatch.services.managed_service import ManagedService, ServiceStatus
from urbanwatch.services.mosquitto import Mosquitto, TlsFiles
from urbanwatch.services.ports import HOST


class Services:
    """The managed Mosquitto + influxd pair of one state folder (or just the ones named in
    `manage`: a service given by URL is not started)."""

    def __init__(self, state_dir: Path, *, mqtt_port: int, influx_port: int,
                 mosquitto_bin: str | Path | None = None,
                 influxd_bin: str | Path | None = None, mqtt_tls: TlsFiles | None = None,
                 influx_host: str = HOST,
                 manage: frozenset[str] = frozenset({"mosquitto", "influxd"})) -> None:
        self.mqtt = Mosquitto(state_dir, mqtt_port, binary=mosquitto_bin, tls=mqtt_tls)
        self.influx = Influxd(state_dir, influx_port, binary=influxd_bin, bind_host=influx_host)
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
