"""`urbanwatch devices ...`: import, add, list, set the status of devices; their MQTT logins.

Every command migrates the SQL database first, validates everything it was
given before writing anything, and reports failures as one line on stderr
with exit code 1. A new device gets its own MQTT password, printed once (only
its hash is stored). Commands that change who may connect install the new users
and ACLs into the managed broker right away (reloading it, no restart) when it
has been set up under the state folder; otherwise the platform does it on start.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from devices.catalogue import load_catalogue
from devices.credential_store import CredentialStore
from devices.credentials import check_username, username_problem
from devices.errors import DeviceError, DeviceFileError
from devices.files import device_record, parse_device, read_devices
from devices.geo import load_geography
from devices.placement import place
from devices.registry import Device, DeviceStatus
from devices.store import DeviceStore
from urbanwatch.broker_auth import broker_present, sync_broker_auth
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
    work: Callable[[DeviceStore, CredentialStore], Awaitable[T]],
    *,
    logins_changed: bool = False,
) -> T:
    """Run `work` on a migrated database; then, if it changed who may connect, tell the broker."""
    settings = load_settings(config, state_dir=state_dir, db={"url": db_url})
    url = settings.db_url

    async def main() -> T:
        await migrate(url)
        engine = create_engine(url)
        try:
            sessions = create_session_factory(engine)
            result = await work(DeviceStore(sessions), CredentialStore(sessions))
            if logins_changed and broker_present(settings):
                await sync_broker_auth(settings, sessions)
            return result
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _echo_logins(passwords: dict[str, str], as_json: bool) -> None:
    if as_json:
        return
    for device_id, password in passwords.items():
        typer.echo(f"{device_id}  MQTT password: {password}")
    if passwords:
        typer.echo("(MQTT username = device id; passwords are shown only once)")


@devices_app.command("import")
def import_devices(
    file: Annotated[Path, typer.Argument(help="devices as .csv or .geojson")],
    areas: Annotated[
        Path | None, typer.Option("--areas", help="districts/grid cells GeoJSON to store first")
    ] = None,
    as_json: AsJson = False,
    state_dir: StateDir = None,
    db_url: DbUrl = None,
    config: ConfigFile = None,
) -> None:
    """Import (insert or replace) devices from a CSV or GeoJSON file; new ones get MQTT logins."""
    with _one_line_errors():
        given = load_geography(areas) if areas is not None else None
        catalogue = load_catalogue()

        async def work(
            store: DeviceStore, logins: CredentialStore
        ) -> tuple[int, int, int, dict[str, str]]:
            geography = given or await store.load_geography()
            devices = read_devices(file, catalogue, geography)
            unusable = [f"device {d.id}: {p}" for d in devices if (p := username_problem(d.id))]
            if unusable:
                raise DeviceFileError(str(file), unusable)
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
            ids = [d.id for d in devices]
            passwords = await logins.issue(ids, only_missing=True)
            return inserted, updated, len(given.areas()) if given else 0, passwords

        inserted, updated, n_areas, passwords = _with_store(
            config, state_dir, db_url, work, logins_changed=True
        )
    if as_json:
        logins = [{"device_id": i, "username": i, "password": p} for i, p in passwords.items()]
        typer.echo(json.dumps({"imported": inserted + updated, "new": inserted,
                               "updated": updated, "credentials": logins}))
        return
    areas_note = f", {n_areas} areas" if areas is not None else ""
    typer.echo(
        f"imported {inserted + updated} devices ({inserted} new, {updated} updated){areas_note}"
    )
    _echo_logins(passwords, as_json)


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
    """Register one new device (fails if the id exists) and print its MQTT password once."""
    with _one_line_errors():
        fields = {"id": device_id, "type": type_, "district": district, "lat": lat, "lon": lon}
        fields |= {"grid": grid, "department": department, "gateway": gateway}
        device = parse_device(fields, load_catalogue())
        check_username(device.id)

        async def work(store: DeviceStore, logins: CredentialStore) -> tuple[Device, str]:
            geography = None if device.grid else await store.load_geography()
            located = place(device, geography)
            await store.add([located])
            passwords = await logins.issue([located.id])
            return located, passwords[located.id]

        added, password = _with_store(config, state_dir, db_url, work, logins_changed=True)
    if as_json:
        login = {"username": added.id, "password": password}
        typer.echo(json.dumps(device_record(added) | {"mqtt": login}))
    else:
        typer.echo(f"added {added.id} ({added.type}, {added.district}/{added.grid or '-'})")
        _echo_logins({added.id: password}, as_json)


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

        async def work(store: DeviceStore, _: CredentialStore) -> tuple[list[Device], int]:
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

        async def work(store: DeviceStore, _: CredentialStore) -> Device:
            return await store.set_status(device_id, status)

        device = _with_store(config, state_dir, db_url, work, logins_changed=True)
    typer.echo(f"{device.id}: {device.status.value}")


@devices_app.command("revoke")
def revoke(
    device_id: Annotated[str, typer.Argument(metavar="ID")],
    state_dir: StateDir = None,
    db_url: DbUrl = None,
    config: ConfigFile = None,
) -> None:
    """Revoke a device's MQTT login: the broker disconnects and refuses it from now on."""
    with _one_line_errors():

        async def work(_: DeviceStore, logins: CredentialStore) -> None:
            await logins.revoke(device_id)

        _with_store(config, state_dir, db_url, work, logins_changed=True)
    typer.echo(f"{device_id}: MQTT login revoked")


@devices_app.command("rotate")
def rotate(
    device_id: Annotated[str, typer.Argument(metavar="ID")],
    as_json: AsJson = False,
    state_dir: StateDir = None,
    db_url: DbUrl = None,
    config: ConfigFile = None,
) -> None:
    """Give a device a new MQTT password (printed once); the old one stops working."""
    with _one_line_errors():

        async def work(store: DeviceStore, logins: CredentialStore) -> str:
            if await store.get(device_id) is None:
                raise DeviceError(f"no device {device_id!r}")
            return (await logins.issue([device_id]))[device_id]

        password = _with_store(config, state_dir, db_url, work, logins_changed=True)
    if as_json:
        typer.echo(json.dumps({"device_id": device_id, "username": device_id,
                               "password": password}))
    else:
        _echo_logins({device_id: password}, as_json)
