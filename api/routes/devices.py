"""Devices: the registry and provisioning, MQTT logins shown once (readings: `device_readings`).

Every role may read; admins and operators may write. A write that changes who may
connect to the broker ends with `ApiContext.on_devices_changed`, which the platform
wires to reloading the broker's users and ACLs (and the ingest registry).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse

from api.context import ApiContext
from api.deps import Caller, ContextDep, require
from api.query import Offset
from api.schemas import (
    DeviceCreate,
    DeviceCreated,
    DeviceImportResult,
    DevicePage,
    DevicePublic,
    DeviceUpdate,
    ImportProblems,
    MqttLogin,
    Problem,
)
from api.schemas_incidents import Invalid
from api.security.principal import Principal, Role
from devices.credential_store import CredentialStore
from devices.credentials import username_problem
from devices.errors import DeviceFileError, RegistryError
from devices.files import device_record, parse_device, read_devices
from devices.geo import Geography
from devices.placement import place, placement_problem
from devices.provisioning import Provisioner
from devices.registry import Device, DeviceStatus
from devices.store import DeviceStore

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])
Writer = Annotated[Principal, Depends(require(Role.admin, Role.operator))]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such device"}
}
REJECTED: dict[int | str, dict[str, Any]] = {
    422: {"model": Invalid, "description": "unknown type, district, grid cell or gateway"},
}
IMPORT_TYPES = {"text/csv": ".csv", "application/geo+json": ".geojson",
                "application/json": ".geojson"}
MAX_IMPORT_BYTES = 32 << 20


@router.get("", summary="List devices with filters and paging")
async def list_devices(
    context: ContextDep,
    _: Caller,
    type: Annotated[str | None, Query(description="device type")] = None,
    district: str | None = None,
    status: DeviceStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> DevicePage:
    store = DeviceStore(context.sessions)
    devices, total = await store.list(
        type=type, district=district, status=status, limit=limit, offset=offset
    )
    return DevicePage(
        items=[DevicePublic.of(d) for d in devices], total=total, limit=limit, offset=offset
    )


@router.post(
    "", summary="Provision a device; its MQTT password is in this response only",
    status_code=status.HTTP_201_CREATED,
    responses={**REJECTED, 409: {"model": Problem, "description": "the id exists already"}},
)
async def create_device(body: DeviceCreate, context: ContextDep, _: Writer) -> DeviceCreated:
    store = DeviceStore(context.sessions)
    geography = await store.load_geography()
    device = await _checked(context, _parsed(context, body.model_dump()), geography)
    try:
        passwords = await Provisioner(context.sessions).add([device])
    except RegistryError as exc:
        raise HTTPException(409, f"device {device.id!r} exists already") from exc
    await _devices_changed(context)
    return DeviceCreated(
        device=DevicePublic.of(device), mqtt=_login(device.id, passwords[device.id])
    )


@router.post(
    "/import",
    summary="Import devices from CSV or GeoJSON, all or nothing; new ones get MQTT logins",
    response_model=DeviceImportResult,
    openapi_extra={"requestBody": {"required": True, "content": {
        "text/csv": {"schema": {"type": "string"}},
        "application/geo+json": {"schema": {"type": "object"}},
    }}},
    responses={
        413: {"model": Problem, "description": "the file is too large"},
        415: {"model": Problem, "description": "not text/csv or application/geo+json"},
        422: {"model": ImportProblems, "description": "invalid rows; nothing was written"},
    },
)
async def import_devices(request: Request, context: ContextDep, _: Writer) -> Any:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in IMPORT_TYPES:
        raise HTTPException(415, f"send text/csv or application/geo+json, not {kind!r}")
    data = await request.body()
    if len(data) > MAX_IMPORT_BYTES:
        raise HTTPException(413, f"at most {MAX_IMPORT_BYTES} bytes per import")
    store = DeviceStore(context.sessions)
    geography = await store.load_geography()
    try:
        devices = _read_upload(data, IMPORT_TYPES[kind], context, geography)
    except DeviceFileError as exc:
        problems = ImportProblems(
            detail=f"{len(exc.problems)} invalid rows; nothing was imported",
            problems=exc.problems,
        )
        return JSONResponse(problems.model_dump(), status_code=422)
    new, updated, passwords = await Provisioner(context.sessions).upsert(devices)
    await _devices_changed(context)
    return DeviceImportResult(
        imported=new + updated, new=new, updated=updated,
        credentials=[_login(i, p) for i, p in passwords.items()],
    )


@router.get("/{device_id}", summary="One device", responses=NOT_FOUND)
async def get_device(device_id: str, context: ContextDep, _: Caller) -> DevicePublic:
    return DevicePublic.of(await find_device(context, device_id))


@router.patch(
    "/{device_id}", summary="Change a device's fields (retiring it cuts its broker access)",
    responses={**NOT_FOUND, **REJECTED},
)
async def update_device(
    device_id: str, body: DeviceUpdate, context: ContextDep, _: Writer
) -> DevicePublic:
    current = await find_device(context, device_id)
    changes = body.model_dump(exclude_unset=True)
    if "district" in changes and "grid" not in changes:
        changes["grid"] = ""  # the old cell belongs to the old district: locate it again
    fields = device_record(current) | changes
    store = DeviceStore(context.sessions)
    device = await _checked(context, _parsed(context, fields), await store.load_geography())
    await store.upsert([device])
    await _devices_changed(context)
    return DevicePublic.of(device)


@router.post(
    "/{device_id}/retire", summary="Retire a device: it is cut off at the broker at once",
    responses=NOT_FOUND,
)
async def retire_device(device_id: str, context: ContextDep, _: Writer) -> DevicePublic:
    await find_device(context, device_id)
    device = await DeviceStore(context.sessions).set_status(device_id, DeviceStatus.RETIRED)
    await _devices_changed(context)
    return DevicePublic.of(device)


@router.post(
    "/{device_id}/credentials",
    summary="Issue a new MQTT password (shown once); the old one stops working",
    responses={**NOT_FOUND, 409: {"model": Problem, "description": "the device is retired"}},
)
async def rotate_credentials(device_id: str, context: ContextDep, _: Writer) -> MqttLogin:
    device = await find_device(context, device_id)
    if device.status == DeviceStatus.RETIRED:
        raise HTTPException(409, f"device {device_id!r} is retired; it may not connect")
    password = (await CredentialStore(context.sessions).issue([device_id]))[device_id]
    await _devices_changed(context)
    return _login(device_id, password)


async def find_device(context: ApiContext, device_id: str) -> Device:
    """The stored device, or 404."""
    device = await DeviceStore(context.sessions).get(device_id)
    if device is None:
        raise HTTPException(404, f"no device {device_id!r}")
    return device


def _parsed(context: ApiContext, fields: dict[str, Any]) -> Device:
    """The device from field values, validated like the CLI does (422 naming the problem)."""
    try:
        return parse_device(fields, context.catalogue)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


async def _checked(context: ApiContext, device: Device, geography: Geography | None) -> Device:
    """Placed in the stored areas, with a gateway that exists and is not itself."""
    problem = username_problem(device.id) or placement_problem(device, geography)
    if problem is None and device.gateway is not None:
        if device.gateway == device.id:
            problem = "a device cannot be its own gateway"
        elif await DeviceStore(context.sessions).get(device.gateway) is None:
            problem = f"unknown gateway {device.gateway!r}"
    if problem is not None:
        raise HTTPException(422, f"device {device.id!r}: {problem}")
    return place(device, geography)


def _read_upload(
    data: bytes, suffix: str, context: ApiContext, geography: Geography | None
) -> list[Device]:
    """Parse an uploaded device file exactly as `urbanwatch devices import` does."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            devices = read_devices(path, context.catalogue, geography)
        except DeviceFileError as exc:
            raise DeviceFileError("upload", [p.removeprefix(f"{path} ") for p in exc.problems]
                                  ) from None
    problems = [
        f"device {d.id}: {problem}" for d in devices
        if (problem := username_problem(d.id) or placement_problem(d, geography)) is not None
    ]
    if problems:
        raise DeviceFileError("upload", problems)
    return [place(d, geography) for d in devices]


async def _devices_changed(context: ApiContext) -> None:
    if context.on_devices_changed is not None:
        await context.on_devices_changed()


def _login(device_id: str, password: str) -> MqttLogin:
    return MqttLogin(device_id=device_id, username=device_id, password=password)


