"""`/metrics` and `/readyz` as an operations center reads them, from a real running platform
(the fixtures' Mosquitto and influxd; SQLite, or PostgreSQL made unreachable)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from importlib.metadata import version

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from devices.clock import now_ms
from devices.registry import Device
from tests.support.platform_process import parse_metrics, sample
from tests.support.platform_run import running as run_platform
from tests.support.polling import eventually
from tests.urbanwatch.test_platform_faults import publish_lel, register
from urbanwatch.platform import Platform
from urbanwatch.services.ports import free_port
from urbanwatch.settings import Settings

GAS = Device("gas-ops-1", "gas", "dongcheng", 39.91, 116.41, "dongcheng-g1")
RED = {"severity": "red", "team": "gas-emergency"}


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[Platform, httpx.AsyncClient]]:
    settings.alerts.tick_s = settings.rules.tick_s = 0.2
    settings.api.port = free_port()
    async with (run_platform(settings, serve_api=True) as platform,
                httpx.AsyncClient(base_url=platform.endpoints.api_url, timeout=10) as api):
        yield platform, api


async def metrics(api: httpx.AsyncClient) -> dict:
    response = await api.get("/metrics")
    assert response.status_code == 200
    return parse_metrics(response.text)


async def test_alerts_incidents_deliveries_live_clients_reloads_process_and_build(
    settings: Settings,
) -> None:
    await register(settings, GAS)
    async with serving(settings) as (platform, api):
        assert platform.alerting is not None and platform.judge is not None
        before = await metrics(api)
        await asyncio.to_thread(publish_lel, settings, GAS, 64.0)  # 50 % LEL and up: red

        async def dispatched() -> bool:
            m = await metrics(api)
            return sample(m, "urbanwatch_deliveries_total", channel="mqtt",
                          outcome="published") >= 1
        await eventually(dispatched, "the red incident published to its team")
        with platform.alerting.hub.subscribe():
            raised = await metrics(api)
        [incident] = await platform.alerting.service.incidents()
        await platform.alerting.service.acknowledge(incident.id, "ops1", now_ms())
        acknowledged = await metrics(api)
        platform.judge.rules_path.write_text("rules: [\n")  # type: ignore[union-attr]
        await eventually(lambda: platform.judge.reload_errors >= 1, "the broken file refused")
        after = await metrics(api)

    assert sample(before, "urbanwatch_alerts_raised_total", severity="red",
                  category="safety") == 0
    assert sample(raised, "urbanwatch_alerts_raised_total", severity="red", category="safety") == 1
    assert sample(raised, "urbanwatch_incidents_open", **RED) == 1
    assert sample(raised, "urbanwatch_incidents_unacknowledged", **RED) == 1
    age = sample(raised, "urbanwatch_incidents_unacknowledged_oldest_age_seconds", **RED)
    assert 0 <= age < 120
    assert sample(raised, "urbanwatch_live_clients") == 1
    assert sample(before, "urbanwatch_live_clients") == 0
    assert ("urbanwatch_live_dropped_events_total", ()) in raised
    assert sample(acknowledged, "urbanwatch_incidents_open", **RED) == 1
    assert ("urbanwatch_incidents_unacknowledged", tuple(sorted(RED.items()))) not in acknowledged
    assert sample(after, "urbanwatch_reload_failures_total", file="rules") == 1
    assert sample(after, "urbanwatch_reload_failures_total", file="routing") == 0
    assert sample(after, "urbanwatch_build_info", version=version("urbanwatch")) == 1
    assert sample(after, "process_resident_memory_bytes") > 0
    assert any(name == "python_info" for name, _ in after)  # the platform collector
    for dependency in ("mqtt", "influxdb", "sql", "alert-store"):
        assert sample(after, "urbanwatch_dependency_up", dependency=dependency) == 1
    assert sample(after, "urbanwatch_degraded") == 0


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_not_ready_while_the_sql_database_is_unreachable(
    settings: Settings, db_url: str
) -> None:
    settings.db.url = db_url
    name = make_url(db_url).database
    admin_dsn = make_url(db_url).set(drivername="postgresql", database="postgres")
    admin = await asyncpg.connect(admin_dsn.render_as_string(hide_password=False))
    try:
        async with serving(settings) as (_platform, api):
            assert (await api.get("/readyz")).json()["status"] == "ready"
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = $1", name)

            async def not_ready() -> bool:
                return (await api.get("/readyz")).status_code == 503
            await eventually(not_ready, "/readyz saying not ready")
            body = (await api.get("/readyz")).json()
            down = await metrics(api)  # still answers, without SQL
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')

            async def ready() -> bool:
                return (await api.get("/readyz")).status_code == 200
            await eventually(ready, "/readyz ready again", timeout_s=60)
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
    assert body["status"] == "not ready" and body["checks"]["sql"] is False
    assert body["degraded"] == []
    assert sample(down, "urbanwatch_dependency_up", dependency="sql") == 0
