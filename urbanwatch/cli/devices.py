"""`urbanwatch devices ...`: import, add, list, set the status of devices; their MQTT logins.

Every change goes through `devices.provisioning`, the service the API calls too, so
both validate alike and refuse the same input with the same reason. Every command
migrates the SQL database first and reports failures as one line on stderr with exit
code 1; nothing is written when anything given is refused. A new device gets its own
MQTT password, stored (as a hash) in the same transaction as the device and printed
once. Commands that change who may connect install the new users and ACLs into the
managed broker right away (reloading it, no restart) when it has been set up under the
state folder; otherwise the platform does it on start.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from devices.catalogue import load_catalogue
from devices.files import ATTRIBUTE_COLUMN, device_record
from devices.geo import load_geography
from devices.provisioning import Imported, Provisioning
from devices.registry import DeviceStatus
from devices.store import DeviceStore
from urbanwatch.cli.options import AsJson, Database, Sessions, database_command
from urbanwatch.services.broker_auth import (
    broker_present,
    external_platform_user,
    render_broker_auth,
    sync_broker_auth,
)
from urbanwatch.services.mosquitto import write_private
from urbanwatch.settings import Settings

devices_app = typer.Typer(
    name="devices", help="Register, import and list devices.", no_args_is_help=True
)
T = TypeVar("T")


def _on_store(db: Database, work: Callable[[Sessions], Awaitable[T]]) -> T:
    """Run `work` on the database (reads)."""

    async def run(_: Settings, sessions: Sessions) -> T:
        return await work(sessions)

    return db.run(run)


def _provisioning(db: Database, work: Callable[[Provisioning], Awaitable[T]]) -> T:
    """Run `work` with the provisioning service; a change of who may connect is installed
    into the managed broker at once, when there is one."""

    async def run(settings: Settings, sessions: Sessions) -> T:
        async def changed() -> None:
            if broker_present(settings):
                await sync_broker_auth(settings, sessions)

        return await work(Provisioning(sessions, load_catalogue(), changed))

    return db.run(run)


def _attribute_columns(pairs: list[str]) -> dict[str, str]:
    """`--attr NAME=VALUE` pairs as the ``attr.<name>`` columns a device file would have."""
    columns: dict[str, str] = {}
    for pair in pairs:
        name, equals, value = (part.strip() for part in pair.partition("="))
        if not (name and equals and value):
            raise ValueError(f"--attr {pair!r}: expected NAME=VALUE, e.g. warning_level=3.5")
        column = ATTRIBUTE_COLUMN + name
        if column in columns:
            raise ValueError(f"--attr {name} given twice")
        columns[column] = value
    return columns


def _echo_logins(passwords: dict[str, str], as_json: bool) -> None:
    if as_json:
        return
    for device_id, password in passwords.items():
        typer.echo(f"{device_id}  MQTT password: {password}")
    if passwords:
        typer.echo("(MQTT username = device id; passwords are shown only once)")


@devices_app.command("import")
@database_command
def import_devices(
    file: Annotated[Path, typer.Argument(help="devices as .csv or .geojson")],
    areas: Annotated[
        Path | None, typer.Option("--areas", help="districts/grid cells GeoJSON to store first")
    ] = None,
    as_json: AsJson = False,
    *,
    db: Database,
) -> None:
    """Import (insert or replace) devices from a CSV or GeoJSON file; new ones get MQTT logins."""
    given = load_geography(areas) if areas is not None else None

    async def work(provisioning: Provisioning) -> Imported:
        data = file.read_bytes()
        console = Console(stderr=True)
        with Progress(console=console, transient=True, disable=not console.is_terminal) as bar:
            task = bar.add_task("importing")
            return await provisioning.import_many(
                data, file.suffix, source=str(file), areas=given,
                on_progress=lambda n, total: bar.update(task, total=total, advance=n),
            )

    result = _provisioning(db, work)
    inserted, updated, passwords = result.new, result.updated, result.passwords
    if as_json:
        logins = [{"device_id": i, "username": i, "password": p} for i, p in passwords.items()]
        typer.echo(json.dumps({"imported": inserted + updated, "new": inserted,
                               "updated": updated, "credentials": logins}))
        return
    areas_note = f", {result.areas} areas" if areas is not None else ""
    typer.echo(
        f"imported {inserted + updated} devices ({inserted} new, {updated} updated){areas_note}"
    )
    _echo_logins(passwords, as_json)


@devices_app.command("add")
@database_command
def add_device(
    device_id: Annotated[str, typer.Argument(metavar="ID", help="device id")],
    type_: Annotated[str, typer.Option("--type", help="device type from the catalogue")],
    district: Annotated[str, typer.Option("--district")],
    lat: Annotated[float, typer.Option("--lat")],
    lon: Annotated[float, typer.Option("--lon")],
    grid: Annotated[str, typer.Option("--grid", help="default: located from stored areas")] = "",
    department: Annotated[str, typer.Option("--department")] = "",
    gateway: Annotated[str, typer.Option("--gateway", help="id of its gateway")] = "",
    attributes: Annotated[
        list[str] | None,
        typer.Option(
            "--attr", metavar="NAME=VALUE",
            help="a numeric attribute, e.g. warning_level=3.5 (repeat for more)",
        ),
    ] = None,
    as_json: AsJson = False,
    *,
    db: Database,
) -> None:
    """Register one new device (fails if the id exists) and print its MQTT password once."""
    fields = {"id": device_id, "type": type_, "district": district, "lat": lat, "lon": lon}
    fields |= {"grid": grid, "department": department, "gateway": gateway}
    fields |= _attribute_columns(attributes or [])
    added, password = _provisioning(db, lambda provisioning: provisioning.create(fields))
    if as_json:
        login = {"username": added.id, "password": password}
        typer.echo(json.dumps(device_record(added) | {"mqtt": login}))
    else:
        typer.echo(f"added {added.id} ({added.type}, {added.district}/{added.grid or '-'})")
        _echo_logins({added.id: password}, as_json)


@devices_app.command("list")
@database_command
def list_devices(
    type_: Annotated[str | None, typer.Option("--type")] = None,
    district: Annotated[str | None, typer.Option("--district")] = None,
    status: Annotated[DeviceStatus | None, typer.Option("--status")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=0)] = None,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    as_json: AsJson = False,
    *,
    db: Database,
) -> None:
    """List devices, filtered and ordered by id."""
    items, total = _on_store(db, lambda sessions: DeviceStore(sessions).list(
        type=type_, district=district, status=status, limit=limit, offset=offset
    ))
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
@database_command
def set_status(
    device_id: Annotated[str, typer.Argument(metavar="ID")],
    status: Annotated[DeviceStatus, typer.Argument(help="active, maintenance or retired")],
    *,
    db: Database,
) -> None:
    """Put a device into maintenance, retire it, or make it active again."""
    device = _provisioning(db, lambda provisioning: provisioning.set_status(device_id, status))
    typer.echo(f"{device.id}: {device.status.value}")


@devices_app.command("revoke")
@database_command
def revoke(device_id: Annotated[str, typer.Argument(metavar="ID")], *, db: Database) -> None:
    """Revoke a device's MQTT login: the broker disconnects and refuses it from now on."""
    _provisioning(db, lambda provisioning: provisioning.revoke_credentials(device_id))
    typer.echo(f"{device_id}: MQTT login revoked")


@devices_app.command("rotate")
@database_command
def rotate(
    device_id: Annotated[str, typer.Argument(metavar="ID")],
    as_json: AsJson = False,
    *,
    db: Database,
) -> None:
    """Give a device a new MQTT password (printed once); the old one stops working."""
    password = _provisioning(
        db, lambda provisioning: provisioning.rotate_credentials(device_id)
    )
    if as_json:
        typer.echo(json.dumps({"device_id": device_id, "username": device_id,
                               "password": password}))
    else:
        _echo_logins({device_id: password}, as_json)


class BrokerFormat(StrEnum):
    MOSQUITTO = "mosquitto"


@devices_app.command("export-broker-auth")
@database_command
def export_broker_auth(
    out: Annotated[Path, typer.Option("--out", help="folder to write the files to")],
    fmt: Annotated[BrokerFormat, typer.Option("--format", help="the broker's file format")] = (
        BrokerFormat.MOSQUITTO),
    as_json: AsJson = False,
    *,
    db: Database,
) -> None:
    """Write the password and ACL files for a broker you run yourself (`mqtt.url`): every
    admitted device, each team login and the platform's own login. Passwords are hashed."""

    async def render(settings: Settings, sessions: Sessions) -> tuple[str, str, bool]:
        platform = external_platform_user(settings)
        passwords, acl = await render_broker_auth(
            settings, sessions, [platform] if platform else [])
        return passwords, acl, platform is not None

    passwords, acl, with_platform = db.run(render)
    files = {"password_file": out / "passwd", "acl_file": out / "acl"}
    out.mkdir(parents=True, exist_ok=True)
    for path, text in zip(files.values(), (passwords, acl), strict=True):
        write_private(path, text)
    users = len(passwords.splitlines())
    if as_json:
        typer.echo(json.dumps({"format": fmt.value, "users": users, "platform_user": with_platform,
                               **{k: str(v) for k, v in files.items()}}))
        return
    typer.echo(f"{fmt.value}: {users} users in {files['password_file']}, "
               f"their topics in {files['acl_file']}")
    if not with_platform:
        typer.echo("note: no platform login ([mqtt] username and password, or the user in "
                   "mqtt.url): add the platform's own user to these files yourself", err=True)
