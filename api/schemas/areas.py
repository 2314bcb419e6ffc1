"""Areas: districts and grid cells as GeoJSON (RFC 7946) Polygon features."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class AreaCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[dict[str, Any]] = Field(
        description='Polygon features; properties {"id", "name", "kind": "district"|"grid", '
        '"district"}; coordinates [lon, lat]'
    )
