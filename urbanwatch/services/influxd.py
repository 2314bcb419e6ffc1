"""The managed influxd (InfluxDB 1.x): its config, HTTP ping probe, and its login.

On the loopback address influxd is reached only from this machine and runs without
authentication. Bound beyond it (``influx.host``), it requires a login: ``auth-enabled`` is
set, and once it answers its first admin user is created (InfluxDB allows that one without a
login) with a password generated into the state folder, which the platform then uses.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import httpx

from devices.credentials import generate_password
from devices.private_paths import private_dir
from ingest.timeseries.influxql import create_admin_user
from urbanwatch.durable_file import replace_durably
from urbanwatch.services.managed_service import ManagedService, ServiceError
from urbanwatch.services.ports import HOST, free_port

ADMIN_USER = "urbanwatch-admin"
LOGIN_FILE = "admin-login.json"


class Influxd(ManagedService):
    name, package, scheme = "influxd", "influxdb", "http"

    def __init__(self, state_dir: Path, port: int, *, rpc_port: int | None = None,
                 bind_host: str = HOST, require_login: bool | None = None,
                 **kwargs: object) -> None:
        super().__init__(state_dir, port, **kwargs)  # type: ignore[arg-type]
        self.rpc_port = rpc_port
        self.bind_host = bind_host
        self.require_login = not is_loopback(bind_host) if require_login is None else require_login

    def write_config(self) -> None:
        rpc_port = self.rpc_port or free_port()
        disabled = "".join(f"\n[[{s}]]\n  enabled = false\n"
                           for s in ("graphite", "collectd", "opentsdb", "udp"))
        self.config_path.write_text(
            f'reporting-disabled = true\nbind-address = "{self.host}:{rpc_port}"\n'
            f'\n[meta]\n  dir = "{self.dir}/meta"\n'
            f'\n[data]\n  dir = "{self.dir}/data"\n  wal-dir = "{self.dir}/wal"\n'
            '  index-version = "tsi1"\n  query-log-enabled = false\n'
            f'\n[http]\n  bind-address = "{self.bind_host}:{self.port}"\n'
            f"  auth-enabled = {'true' if self.require_login else 'false'}\n"
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

    def start(self, *, detach: bool = False) -> bool:
        """Start it (see `ManagedService.start`); when it requires a login, make sure its admin
        user is ours."""
        started = super().start(detach=detach)
        if self.require_login:
            self._ensure_admin()
        return started

    def login(self) -> tuple[str, str] | None:
        """The admin login the platform uses (made on first use), or None without auth."""
        if not self.require_login:
            return None
        path = self.dir / LOGIN_FILE
        try:
            stored = json.loads(path.read_text())
            return stored["username"], stored["password"]
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError) as exc:
            raise ServiceError(f"{path} is unreadable ({exc}); delete it and the influxd "
                               "folder's meta/ to start again with a new login") from exc
        login = {"username": ADMIN_USER, "password": generate_password()}
        private_dir(path.parent)
        replace_durably(path, lambda f: f.write(json.dumps(login).encode()))  # 0600
        return ADMIN_USER, login["password"]

    def _ensure_admin(self) -> None:
        login = self.login()
        assert login is not None
        query = f"{self.url}/query"
        first = httpx.post(query, data={"q": create_admin_user(*login)}, timeout=10.0)
        if first.status_code == 200 and "error" not in first.text:
            return  # created now
        ours = httpx.post(query, data={"q": "SHOW USERS"}, auth=login, timeout=10.0)
        if ours.status_code != 200:
            raise ServiceError(f"influxd at {self.url} has users, but the login in "
                               f"{self.dir / LOGIN_FILE} is not one of them ({ours.text.strip()})")


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything
