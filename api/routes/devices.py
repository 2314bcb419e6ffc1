"""Devices: the registry and provisioning, MQTT logins shown once (readings: `device_readings`).

Every role may read; admins and operators may write, through `devices.provisioning`
(the service the CLI calls too), which ends each write with `ApiContext.on_devices_changed`:
the platform wires it to reloading the broker's users and ACLs (and the ingest registry).
Refusals (`api.problems`): no such device 404, an existing id or a retired device 409,
anything else 422.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status

from api.deps import Caller, DeviceStoreDep, KnownDevice, ProvisioningDep, require
from api.query import Offset, PageSize
from api.schemas.devices import (
    DeviceCreate,
    DeviceCreated,
    DeviceImportResult,
    DevicePage,
    DevicePublic,
    DeviceUpdate,
    ImportProblems,
    MqttLogin,
)
from api.schemas.problems import Invalid, Problem
from api.security.principal import Principal, Role
from devices.registry import DeviceStatus

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
IMPORT_PATH = f"{router.prefix}/import"  # has a body limit of its own (`api.body_limit`)


@router.get("", summary="List devices with filters and paging")
async def list_devices(
    _: Caller,
    devices: DeviceStoreDep,
    type: Annotated[str | None, Query(description="device type")] = None,
    district: str | None = None,
    status: DeviceStatus | None = None,
    limit: PageSize = 100,
    offset: Offset = 0,
) -> DevicePage:
    found, total = await devices.list(
        type=type, district=district, status=status, limit=limit, offset=offset
    )
    return DevicePage(
        items=[DevicePublic.of(d) for d in found], total=total, limit=limit, offset=offset
    )


@router.post(
    "", summary="Provision a device; its MQTT password is in this response only",
    status_code=status.HTTP_201_CREATED,
    responses={**REJECTED, 409: {"model": Problem, "description": "the id exists already"}},
)
async def create_device(
    body: DeviceCreate, _: Writer, provisioning: ProvisioningDep
) -> DeviceCreated:
    device, password = await provisioning.create(body.model_dump(mode="json"))
    return DeviceCreated(device=DevicePublic.of(device), mqtt=_login(device.id, password))


@router.post(
    "/import",
    summary="Import devices from CSV or GeoJSON, all or nothing; new ones get MQTT logins",
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
async def import_devices(
    request: Request, _: Writer, provisioning: ProvisioningDep
) -> DeviceImportResult:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in IMPORT_TYPES:
        raise HTTPException(415, f"send text/csv or application/geo+json, not {kind!r}")
    data = await request.body()  # at most `ApiSettings.max_import_bytes` (`api.body_limit`)
    result = await provisioning.import_many(data, IMPORT_TYPES[kind], source="upload")
    return DeviceImportResult(
        imported=result.new + result.updated, new=result.new, updated=result.updated,
        credentials=[_login(i, p) for i, p in result.passwords.items()],
    )


@router.get("/{device_id}", summary="One device", responses=NOT_FOUND)
async def get_device(_: Caller, device: KnownDevice) -> DevicePublic:
    return DevicePublic.of(device)


@router.patch(
    "/{device_id}", summary="Change a device's fields (retiring it cuts its broker access)",
    responses={**NOT_FOUND, **REJECTED},
)
async def update_device(
    device_id: str, body: DeviceUpdate, _: Writer, provisioning: ProvisioningDep
) -> DevicePublic:
    changes = body.model_dump(mode="json", exclude_unset=True)
    return DevicePublic.of(await provisioning.update(device_id, changes))


@router.post(
    "/{device_id}/retire", summary="Retire a device: it is cut off at the broker at once",
    responses=NOT_FOUND,
)
async def retire_device(device_id: str, _: Writer, provisioning: ProvisioningDep) -> DevicePublic:
    return DevicePublic.of(await provisioning.retire(device_id))


@router.post(
    "/{device_id}/credentials",
    summary="Issue a new MQTT password (shown once); the old one stops working",
    responses={**NOT_FOUND, 409: {"model": Problem, "description": "the device is retired"}},
)
async def rotate_credentials(
    device_id: str, _: Writer, provisioning: ProvisioningDep
) -> MqttLogin:
    password = await provisioning.rotate_credentials(device_id)
    return _login(device_id, password)


def _login(device_id: str, password: str) -> MqttLogin:
    return MqttLogin(device_id=device_id, username=device_id, password=password)
