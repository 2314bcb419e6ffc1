"""`urbanwatch replay FILE.csv --device ID --metric NAME [--speed X]`: a recorded series
(`timestamp,value`, e.g. a Numenta Anomaly Benchmark traffic file) as a device's stream.

The device must be registered (its district names the topic) and its type must report the
metric; the series is moved to start now (or `--start`) and published over MQTT as the
simulator's login.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from devices.catalogue import load_catalogue
from devices.errors import DeviceError
from devices.names import Kind, check
from devices.store import DeviceStore
from simulators.errors import PublishError
from simulators.publisher import PublishOptions
from simulators.replay import read_series, replay
from urbanwatch.cli.simulate import start_ms
from urbanwatch.database import create_engine, create_session_factory, migrate
from urbanwatch.services.broker_auth import client_url, managed, sync_broker_auth
from urbanwatch.settings import Settings, load_settings


def replay_command(
    file: Annotated[Path, typer.Argument(metavar="FILE.csv", help="timestamp,value rows")],
    device: Annotated[str, typer.Option("--device", help="a registered device id")],
    metric: Annotated[str, typer.Option("--metric", help="a metric of the device's type")],
    speed: Annotated[float, typer.Option("--speed", min=0.001, help="recorded seconds per "
                                         "second (> 1: run the platform with --clock readings)")
                     ] = 1.0,
    start: Annotated[datetime | None, typer.Option("--start", help="first reading's time "
                                                   "(UTC unless given) [now]")] = None,
    state_dir: Annotated[Path | None, typer.Option("--state-dir", help="[settings]")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="TOML settings file")] = None,
) -> None:
    """Replay a recorded series as one device's stream; print a JSON summary at the end."""
    try:
        check(Kind.DEVICE, device)
        settings = load_settings(config, state_dir=state_dir)
        district = asyncio.run(_district(settings, device, metric))
        series = read_series(file).moved_to(start_ms(start))
    except (ValueError, OSError, DeviceError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if managed(settings):
        asyncio.run(sync_broker_auth(settings))
    tls_ca = str(settings.mqtt.tls_ca) if settings.mqtt.tls_ca else None
    options = PublishOptions(client_url(settings, "simulator"), f"urbanwatch-replay-{device}",
                             settings.mqtt.topic_prefix, settings.mqtt.qos, tls_ca=tls_ca)
    try:
        summary = asyncio.run(replay(series, device, district, metric, options, speed))
    except PublishError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps({"device": device, "metric": metric, "readings": len(series.ts_ms),
                           "published": summary.readings_acked,
                           "first_ts_ms": int(series.ts_ms[0]), "last_ts_ms": int(series.ts_ms[-1]),
                           "duration_s": round(summary.duration_s, 3)}))


async def _district(settings: Settings, device_id: str, metric: str) -> str:
    await migrate(settings.db_url)
    engine = create_engine(settings.db_url)
    try:
        found = await DeviceStore(create_session_factory(engine)).get(device_id)
    finally:
        await engine.dispose()
    if found is None:
        raise ValueError(f"device {device_id!r} is not registered")
    metrics = load_catalogue()[found.type].metrics
    if metric not in metrics:
        raise ValueError(f"a {found.type} device has no metric {metric!r} "
                         f"(it has {', '.join(metrics)})")
    return found.district


