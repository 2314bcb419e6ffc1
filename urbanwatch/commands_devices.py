"""`urbanwatch devices ...`: import, add, list and set the status of devices.

Every command migrates the SQL database first, validates everything it was
given before writing anything, and reports failures as one line on stderr
with exit code 1.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from devices.catalogue import load_catalogue
from devices.errors import DeviceError
from devices.files import device_record, parse_device, read_devices
from devices.geo import Geography, load_geography
from devices.registry import Device, DeviceStatus
from devices.store import DeviceStore
from urbanwatch.database import create_engine, create_session_factory, migrate
from urbanwatch.settings import load_settings

devices_app = typer.Typer(
    name="devices", help="Register, import and list devices.", no_args_is_help=True
)

StateDir = Annotated[
    Path | None, typer.Option("--state-dir", help="state folder (default .urbanwatch)")
]
DbUrl = Annotated[
    str | None, typer.Option("--db-url", help="SQLAlchemy async URL (default: SQLite in state dir)")
]
ConfigFile = Annotated[Path | None, typer.Option("--config", help="TOML settings file")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]
T = TypeVar("T")
_UPSERT_CHUNK = 1000


@contextmanager
def _one_line_errors() -> Iterator[None]:
    try:
        yield
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:
        lines = str(exc).strip().splitlines() or [""]
        kind = (
            "" if isinstance(exc, DeviceError | ValueError | OSError) else f"{type(exc).__name__}: "
        )
        typer.echo(f"error: {kind}{lines[0]}", err=True)
        raise typer.Exit(1) from None


def _with_store(
    config: Path | None,
    state_dir: Path | None,
    db_url: str | None,
    work: Callable[[DeviceStore], Awaitable[T]],
) -> T:
    url = load_settings(config, state_dir=state_dir, db={"url": db_url}).db_url

    async def main() -> T:
        await migrate(url)
        engine = create_engine(url)
        try:
            return await work(DeviceStore(create_session_factory(engine)))
        finally:
            await engine.dispose()

    return asyncio.run(main())


@devices_app.command("import")
def import_devices(
    file: Annotated[Path, typer.Argument(help="devices as .csv or .geojson")],
    areas: Annotated[
        Path | None, typer.Option("--areas", help="districts/grid cells GeoJSON to store first")
    ] = None,
    state_dir: StateDir = None,
    db_url: DbUrl = None,
    config: ConfigFile = None,
) -> None:
    """Import (insert or replace) devices from a CSV or GeoJSON file."""
    with _one_line_errors():
        given = load_geography(areas) if areas is not None else None
        catalogue = load_catalogue()

        async def work(store: DeviceStore) -> tuple[int, int, int]:
            geography = given or await store.load_geography()
            devices = read_devices(file, catalogue, geography)
            if given is not None:
                await store.put_areas(given.areas())
            inserted = updated = 0
            console = Console(stderr=True)
            with Progress(console=console, transient=True, disable=not console.is_terminal) as bar:
                task = bar.add_task("importing", total=len(devices))
                for lo in range(0, len(devices), _UPSERT_CHUNK):
                    chunk = devices[lo : lo + _UPSERT_CHUNK]
                    new, old = await store.upsert(chunk)
                    inserted, updated = inserted + new, updated + old
                    bar.advance(task, len(chunk))
            return inserted, updated, len(given.areas()) if given else 0

        inserted, updated, n_areas = _with_store(config, state_dir, db_url, work)
    areas_note = f", {n_areas} areas" if areas is not None else ""
    typer.echo(
        f"imported {inserted + updated} devices ({inserted} new, {updated} updated){areas_note}"
    )


@devices_app.command("add")
def add_device(
    device_id: Annotated[str, typer.Argument(metavar="ID", help="device id")],
    type_: Annotated[str, typer.Option("--type", help="device type from the catalogue")],
    district: Annotated[str, typer.Option("--district")],
    lat: Annotated[float, typer.Option("--lat")],
    lon: Annotated[float, typer.Option("--lon")],
    grid: Annotated[str, typer.Option("--grid", help="default: located from stored areas")] = "",
    department: Annotated[str, typer.Option("--department")] = "",
    gateway: Annotated[str, typer.Option("--gateway", help="id of its gateway")] = "",
    as_json: AsJson = False,
    state_dir: StateDir = None,
    db_url: DbUrl = None,
    config: ConfigFile = None,
) -> None:
    """Register one new device (fails if the id exists)."""
    with _one_line_errors():
        fields = {"id": device_id, "type": type_, "district": district, "lat": lat, "lon": lon}
        fields |= {"grid": grid, "department": department, "gateway": gateway}
        device = parse_device(fields, load_catalogue())

        async def work(store: DeviceStore) -> Device:
            geography = None if device.grid else await store.load_geography()
            located = _with_grid(device, geography)
            await store.add([located])
            return located

        added = _with_store(config, state_dir, db_url, work)
    if as_json:
        typer.echo(json.dumps(device_record(added)))
    else:
        typer.echo(f"added {added.id} ({added.type}, {added.district}/{added.grid or '-'})")


def _with_grid(device: Device, geography: Geography | None) -> Device:
    if geography is None:
        return device
    district, grid = geography.locate(device.lat, device.lon)
    if grid is None or district != device.district:
        return device
    return replace(device, grid=grid)


@devices_app.command("list")
def list_devices(
    type_: Annotated[str | None, typer.Option("--type")] = None,
    district: Annotated[str | None, typer.Option("--district")] = None,
    status: Annotated[DeviceStatus | None, typer.Option("--status")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=0)] = None,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    as_json: AsJson = False,
    state_dir: StateDir = None,
    db_url: DbUrl = None,
    config: ConfigFile = None,
) -> None:
    """List devices, filtered and ordered by id."""
    with _one_line_errors():

        async def work(store: DeviceStore) -> tuple[list[Device], int]:
            return await store.list(
                type=type_, district=district, status=status, limit=limit, offset=offset
            )

        items, total = _with_store(config, state_dir, db_url, work)
    if as_json:
        typer.echo(json.dumps({"total": total, "items": [device_record(d) for d in items]}))
        return
    table = Table("id", "type", "district", "grid", "status", "lat", "lon", "gateway")
    for d in items:
        coords = (f"{d.lat:.6f}", f"{d.lon:.6f}")
        table.add_row(d.id, d.type, d.district, d.grid, d.status.value, *coords, d.gateway or "")
    console = Console()
    console.print(table)
    console.print(f"{len(items)} of {total} devices")


@devices_app.command("set-status")
def set_status(
    device_id: Annotated[str, typer.Argument(metavar="ID")],
    status: Annotated[DeviceStatus, typer.Argument(help="active, maintenance or retired")],
    state_dir: StateDir = None,
    db_url: DbUrl = None,
    config: ConfigFile = None,
) -> None:
    """Put a device into maintenance, retire it, or make it active again."""
    with _one_line_errors():

        async def work(store: DeviceStore) -> Device:
            return await store.set_status(device_id, status)

        device = _with_store(config, state_dir, db_url, work)
    typer.echo(f"{device.id}: {device.status.value}")
