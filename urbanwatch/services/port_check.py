"""Before anything starts: every port `serve` / `demo` will listen on must be free.

Finding a taken port only when the API (or a managed service) binds it leaves the rest of the
platform half started; checking first lets the command stop at once, naming the port and the
setting that moves it. A managed service of this state folder that already runs keeps its port
(it is adopted, not started).
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from urbanwatch.services.broker_auth import managed_services
from urbanwatch.services.ports import HOST
from urbanwatch.settings import Settings


class PortInUseError(Exception):
    """A port the platform needs cannot be bound; the message says how to choose another."""


@dataclass(frozen=True)
class NeededPort:
    what: str
    host: str
    port: int
    change: str  # how to choose another
    holder: str = ""  # who else may hold it, and how to stop that


def needed_ports(settings: Settings, *, api: bool = True) -> list[NeededPort]:
    """The ports this run will bind: the API's, and those of managed services not yet running."""
    needed = []
    if api:
        needed.append(NeededPort("the API", settings.api.host, settings.api.port,
                                 "--api-port or URBANWATCH_API__PORT"))
    changes = {
        "mosquitto": ("the managed Mosquitto", "URBANWATCH_MQTT__PORT (or --mqtt-url for a "
                      "broker of your own)"),
        "influxd": ("the managed influxd", "URBANWATCH_INFLUX__PORT (or --influx-url for an "
                    "InfluxDB of your own)"),
    }
    for service in managed_services(settings).all:
        if not (service.is_running() and service.answers()):
            what, change = changes[service.name]
            needed.append(NeededPort(what, HOST, service.port, change, (
                " (if it is another state folder's managed services: "
                "`urbanwatch services down --state-dir THAT_FOLDER` stops them)")))
    return needed


def check_ports(settings: Settings, *, api: bool = True) -> None:
    """Raise `PortInUseError` for the first needed port that cannot be bound now."""
    for needed in needed_ports(settings, api=api):
        try:
            with socket.create_server((needed.host, needed.port)):  # SO_REUSEADDR, as servers
                pass
        except OSError as exc:
            reason = "is already in use" if _in_use(exc) else f"cannot be bound ({exc.strerror})"
            raise PortInUseError(
                f"port {needed.port} ({needed.what}, {needed.host}) {reason}; "
                f"stop what listens there{needed.holder} or choose another port with "
                f"{needed.change}"
            ) from exc


def _in_use(exc: OSError) -> bool:
    return exc.errno == errno.EADDRINUSE
