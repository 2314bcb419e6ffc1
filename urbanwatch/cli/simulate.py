"""`urbanwatch simulate` and `urbanwatch city`: the synthetic city and its MQTT traffic.

Both build the city from (devices, seed) with the same defaults, so the GeoJSON
written by `city` describes exactly the devices `simulate` publishes for.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from dataclasses import replace
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from devices.clock import now_ms
from simulators.c_publisher import CPublisherError, publish_city
from simulators.city import City, build_city, write_city
from simulators.errors import PublishError
from simulators.payloads import PayloadFormat
from simulators.publisher import PublishOptions, PublishSummary, publish
from simulators.scenarios.base import Run
from simulators.scenarios.plan import build_scenarios
from simulators.scenarios.plan import truth as plan_truth
from simulators.timed import publish_timed
from urbanwatch.services.broker_auth import client_url, managed, sync_broker_auth
from urbanwatch.settings import Settings, load_settings, without_password

DEFAULT_DEVICES = 200


class Publisher(StrEnum):
    PYTHON = "python"
    C = "c"


DEFAULT_SEED = 1

Devices = Annotated[int, typer.Option("--devices", min=1, help="number of simulated devices")]
Seed = Annotated[int, typer.Option("--seed", help="city and signal seed")]


def simulate(
    devices: Devices = DEFAULT_DEVICES,
    rate: Annotated[float, typer.Option("--rate", min=0.001, help="readings per second")] = 1000.0,
    duration: Annotated[float, typer.Option("--duration", min=0, help="seconds")] = 60.0,
    seed: Seed = DEFAULT_SEED,
    qos: Annotated[int | None, typer.Option("--qos", min=0, max=1, help="[settings]")] = None,
    mqtt_url: Annotated[
        str | None, typer.Option("--mqtt-url", help="mqtt://[user:pass@]host:port [settings]")
    ] = None,
    topic_prefix: Annotated[str | None, typer.Option("--topic-prefix", help="[settings]")] = None,
    fmt: Annotated[PayloadFormat, typer.Option("--format")] = PayloadFormat.JSON,
    client_id: Annotated[str, typer.Option("--client-id")] = "urbanwatch-simulator",
    publisher: Annotated[Publisher, typer.Option(
        "--publisher", help="python: paho, stamps and values computed as it goes (~12,000 "
        "readings/s here); c: the C publisher sends messages generated first (compact JSON, "
        "no TLS; needs cc and libmosquitto-dev), tens of thousands of readings/s")
    ] = Publisher.PYTHON,
    state_dir: Annotated[Path | None, typer.Option("--state-dir", help="[settings]")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="TOML settings file")] = None,
    scenario: Annotated[list[str] | None, typer.Option(
        "--scenario", help="NAME[:k=v,...] (repeatable): flood, gas_leak, pollution, "
        "traffic_accident, fire, structural, a fault (stuck, drift, spike, dropout, "
        "gateway_offline, clock_skew, duplicates, garbage) or mix[:count=N]; keys place, "
        "start, duration, intensity, seed")] = None,
    truth: Annotated[Path | None, typer.Option(
        "--truth", help="write the run's ground truth (JSON) here")] = None,
    speed: Annotated[float | None, typer.Option(
        "--speed", min=0.001, help="simulated seconds per second; with --scenario, --truth or "
        "--speed devices report on their own schedule and --duration is simulated time "
        "(the platform should run with --clock readings)")] = None,
    start: Annotated[datetime | None, typer.Option(
        "--start", help="simulated start (UTC unless the time has an offset) [now]")] = None,
    holiday: Annotated[list[str] | None, typer.Option(
        "--holiday", help="YYYY-MM-DD (repeatable): an extra holiday (weekend traffic)")] = None,
) -> None:
    """Publish the synthetic city's readings over MQTT; print a JSON summary at the end."""
    timed = bool(scenario or truth or speed)
    mqtt = {"url": mqtt_url, "qos": qos, "topic_prefix": topic_prefix}
    settings = load_settings(config, state_dir=state_dir, mqtt=mqtt)
    if managed(settings):  # the managed broker admits only known users: make sure of ours
        asyncio.run(sync_broker_auth(settings))
    url = client_url(settings, "simulator")
    tls_ca = str(settings.mqtt.tls_ca) if settings.mqtt.tls_ca else None
    options = PublishOptions(
        url, client_id, settings.mqtt.topic_prefix, settings.mqtt.qos, fmt, tls_ca=tls_ca
    )
    city = build_city(devices, seed)
    err = Console(stderr=True)
    try:
        if timed:
            city = _with_holidays(city, holiday or [])
            run = Run(city, start_ms(start), round(duration * 1000), seed)
            scenarios = build_scenarios(run, scenario or [])
            if truth is not None:
                plan_truth(run, scenarios).write(truth)
            summary = asyncio.run(publish_timed(city, options, run, scenarios, speed or 1.0))
        elif publisher is Publisher.C:
            if threading.current_thread() is threading.main_thread():  # (not when embedded)
                # SIGTERM as Ctrl-C: the C publisher is stopped with us (no summary then)
                signal.signal(signal.SIGTERM, signal.default_int_handler)
            with err.status(f"simulate: generating, then publishing for {duration:g} s"):
                summary = publish_city(city, options, rate, duration,
                                       settings.state_dir / "tmp")
        else:
            summary = asyncio.run(_publish_with_progress(city, options, rate, duration, err))
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    except (PublishError, CPublisherError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps({
        "published": summary.readings_acked,
        "readings_sent": summary.readings,
        "messages": summary.messages_acked,
        "messages_sent": summary.messages,
        "devices": summary.devices,
        "duration_s": round(summary.duration_s, 3),
        "rate": round(summary.rate, 1),
        "qos": options.qos,
        "format": str(fmt),
        "mqtt_url": without_password(url),
        "topic_prefix": options.topic_prefix,
        "publisher": str(publisher),
    }))


def start_ms(start: datetime | None) -> int:
    """`start` in epoch ms (a naive time is UTC); now when None."""
    if start is None:
        return now_ms()
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    return int(start.timestamp() * 1000)


def _with_holidays(built: City, extra: list[str]) -> City:
    try:
        days = frozenset(date.fromisoformat(d) for d in extra)
    except ValueError as exc:
        raise ValueError(f"--holiday: {exc}") from exc
    return replace(built, holidays=built.holidays | days) if days else built


def city(
    devices: Devices = DEFAULT_DEVICES,
    seed: Seed = DEFAULT_SEED,
    out: Annotated[Path, typer.Option("--out", help="folder for the GeoJSON files")] = Path("."),
) -> None:
    """Write the synthetic city as `areas.geojson` and `devices.geojson`."""
    built = build_city(devices, seed)
    areas_path, devices_path = write_city(built, out)
    typer.echo(json.dumps({
        "areas": str(areas_path),
        "devices": str(devices_path),
        "n_devices": len(built.devices),
        "districts": len(built.districts),
        "cells": len(built.cells),
        "seed": seed,
    }))


def broker_url(settings: Settings) -> str:
    """The configured broker, or the managed one on its port."""
    return settings.mqtt.url or f"mqtt://127.0.0.1:{settings.mqtt.port}"


async def _publish_with_progress(
    city_model: City, options: PublishOptions, rate: float, duration_s: float, console: Console
) -> PublishSummary:
    columns = (
        TextColumn("[bold]simulate"),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("connecting", total=duration_s or None)

        def show(s: PublishSummary) -> None:
            progress.update(
                task,
                completed=min(s.duration_s, duration_s),
                description=f"{s.readings_acked:,} readings acked, {s.rate:,.0f}/s",
            )

        stop = asyncio.Event()  # SIGINT / SIGTERM end publishing early, still with a summary
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        return await publish(city_model, options, rate, duration_s, on_progress=show, stop=stop)
