"""The city's stored districts and grid cells, as GeoJSON (what the pages draw the map from).

Every role may read. Areas are stored by `urbanwatch devices import --areas` (or a city file);
with none stored the collection is empty.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Caller, DeviceStoreDep
from api.schemas.areas import AreaCollection
from devices.geo import AreaKind

router = APIRouter(prefix="/api/v1/areas", tags=["areas"])


@router.get("", summary="The stored districts and grid cells as a GeoJSON FeatureCollection")
async def list_areas(
    _: Caller, devices: DeviceStoreDep, kind: AreaKind | None = None
) -> AreaCollection:
    areas = await devices.list_areas(kind)
    return AreaCollection(features=[area.feature() for area in areas])
