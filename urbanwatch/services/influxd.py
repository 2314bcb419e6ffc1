"""The managed influxd (InfluxDB 1.x): its config and HTTP ping probe."""

from __future__ import annotations

from pathlib import Path

import httpx

from urbanwatch.services.managed_service import ManagedService
from urbanwatch.services.ports import free_port


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
