"""The city's stored districts and grid cells, as GeoJSON (what the pages draw the map from).

Every role may read. Areas are stored by `urbanwatch devices import --areas` (or a city file);
with none stored the collection is empty. The body carries an ETag (`api.etag`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response

from api.deps import Caller, DeviceStoreDep
from api.etag import etag_of, matches, not_modified, tagged_json
from api.schemas.areas import AreaCollection
from devices.geo import AreaKind

router = APIRouter(prefix="/api/v1/areas", tags=["areas"])


@router.get(
    "", summary="The stored districts and grid cells as a GeoJSON FeatureCollection",
    response_model=AreaCollection,
    responses={304: {"description": "the areas have not changed since that ETag"}},
)
async def list_areas(
    _: Caller, devices: DeviceStoreDep, kind: AreaKind | None = None,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    areas = await devices.list_areas(kind)
    body = AreaCollection(features=[area.feature() for area in areas]).model_dump_json().encode()
    if matches(if_none_match, etag := etag_of(body)):  # the shapes stay: a 304 saves the transfer
        return not_modified(etag)
    return tagged_json(body, etag)
