"""The devices as the map draws them: one call, in columns, with an ETag.

Every role may read (as `GET /devices`). Loading a city of devices through `GET /devices`
pages costs the server a full `Device` each and the page ten round trips; the map needs
seven fields of each. The ETag is the devices' version (`DeviceStore.version`): a client that
holds the current body gets a 304 for one aggregate query, and the body built for the current
version is kept (`ApiContext.device_map`) for the next page that loads.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response

from api.deps import Caller, DeviceMapDep, DeviceStoreDep
from api.etag import matches, not_modified, tagged_json
from api.schemas.device_map import DeviceMap
from devices.sql import TableVersion

router = APIRouter(prefix="/api/v1/map", tags=["devices"])


@router.get(
    "/devices",
    summary="Every device's id, type, area, position and status, in columns (for a map)",
    response_model=DeviceMap,
    responses={304: {"description": "the devices have not changed since that ETag"}},
)
async def device_map(
    _: Caller, devices: DeviceStoreDep, last: DeviceMapDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    if matches(if_none_match, etag := _etag(await devices.version())):
        return not_modified(etag)
    if last.etag != etag:  # else the body built for this version already
        version, rows = await devices.map_rows()
        last.etag, last.body = _etag(version), DeviceMap.of(rows).model_dump_json().encode()
    return tagged_json(last.body, last.etag)


def _etag(version: TableVersion) -> str:
    return f'"devices-{"-".join(map(str, version))}"'

