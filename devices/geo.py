"""City geography: districts and grid cells, point location and grid neighbours.

The wire/file format is a GeoJSON FeatureCollection of Polygon or MultiPolygon features (a
real district may have islands) whose properties are ``{"id", "name", "kind":
"district"|"grid", "district"}``; a grid cell names the district it belongs to; ids follow
`devices.names`, the name is free text. Coordinates are GeoJSON ``[lon, lat]``.

Geometry is shapely's: `Geography.locate` asks an STR tree of the areas which ones cover each
point (holes are outside, borders inside); a point on a shared border goes to the first area
(file order) that claims it. Grid cells are neighbours when they touch (an edge or a corner).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from devices.errors import GeographyError, InvalidNameError
from devices.names import Kind, check

AreaKind = Literal["district", "grid"]
Ring = tuple[tuple[float, float], ...]
Polygon = tuple[Ring, ...]  # exterior first, then holes
_TOUCH_EPS = 1e-9


@dataclass(frozen=True)
class Area:
    id: str
    name: str
    kind: AreaKind
    district: str
    polygons: tuple[Polygon, ...]  # one, or several for a MultiPolygon; (lon, lat), closed rings
    shape: BaseGeometry = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = [shapely.Polygon(p[0], p[1:]) for p in self.polygons]
        shape = parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
        object.__setattr__(self, "shape", shape)

    def geometry(self) -> dict:
        coords = [[[list(p) for p in ring] for ring in poly] for poly in self.polygons]
        if len(coords) == 1:
            return {"type": "Polygon", "coordinates": coords[0]}
        return {"type": "MultiPolygon", "coordinates": coords}

    def feature(self) -> dict:
        props = {"id": self.id, "name": self.name, "kind": self.kind, "district": self.district}
        return {"type": "Feature", "properties": props, "geometry": self.geometry()}


class _AreaIndex:
    """An STR tree of areas' shapes, answering "the first area covering this point"."""

    def __init__(self, areas: tuple[Area, ...]) -> None:
        self.tree = shapely.STRtree([a.shape for a in areas])

    def first_containing(self, lon: np.ndarray, lat: np.ndarray) -> npt.NDArray[np.intp]:
        """Index of the first area containing each point, -1 where none does."""
        out = np.full(len(lon), -1, dtype=np.intp)
        if not len(self.tree) or not len(lon):
            return out
        point, area = self.tree.query(shapely.points(lon, lat), predicate="intersects")
        first = np.full(len(lon), np.iinfo(np.intp).max, dtype=np.intp)
        np.minimum.at(first, point, area)
        found = first != np.iinfo(np.intp).max
        out[found] = first[found]
        return out


@dataclass(frozen=True)
class Geography:
    districts: tuple[Area, ...]
    grids: tuple[Area, ...]
    _district_index: _AreaIndex = field(init=False, repr=False, compare=False)
    _grid_index: _AreaIndex = field(init=False, repr=False, compare=False)
    _neighbours: dict[str, frozenset[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ids = [a.id for a in (*self.districts, *self.grids)]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise GeographyError(f"duplicate area ids: {dupes[:10]}")
        district_ids = {d.id for d in self.districts}
        for grid in self.grids:
            if grid.district not in district_ids:
                raise GeographyError(f"grid cell {grid.id}: unknown district {grid.district!r}")
        object.__setattr__(self, "_district_index", _AreaIndex(self.districts))
        object.__setattr__(self, "_grid_index", _AreaIndex(self.grids))
        object.__setattr__(self, "_neighbours", _touching(self.grids))

    @classmethod
    def build(cls, areas: Iterable[Area]) -> Geography:
        areas = list(areas)
        return cls(
            tuple(a for a in areas if a.kind == "district"),
            tuple(a for a in areas if a.kind == "grid"),
        )

    def areas(self) -> tuple[Area, ...]:
        return (*self.districts, *self.grids)

    def to_geojson(self) -> dict:
        return {"type": "FeatureCollection", "features": [a.feature() for a in self.areas()]}

    def locate(self, lat: float, lon: float) -> tuple[str | None, str | None]:
        """(district id, grid cell id) containing the point; None where none does."""
        districts, grids = self.locate_many(np.array([lat]), np.array([lon]))
        return districts[0], grids[0]

    def locate_many(
        self, lat: npt.ArrayLike, lon: npt.ArrayLike
    ) -> tuple[list[str | None], list[str | None]]:
        lat_a, lon_a = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
        d_idx = self._district_index.first_containing(lon_a, lat_a)
        g_idx = self._grid_index.first_containing(lon_a, lat_a)
        grids = [self.grids[i].id if i >= 0 else None for i in g_idx]
        districts = [
            self.districts[d].id if d >= 0 else self.grids[g].district if g >= 0 else None
            for d, g in zip(d_idx, g_idx, strict=True)
        ]
        return districts, grids

    def neighbours(self, grid_id: str) -> frozenset[str]:
        """Grid cells sharing an edge or a corner with `grid_id` (not itself)."""
        return self._neighbours.get(grid_id, frozenset())


def _touching(grids: tuple[Area, ...]) -> dict[str, frozenset[str]]:
    """Cells touch when they share an edge or a corner (to within a rounding error)."""
    found: dict[str, set[str]] = {g.id: set() for g in grids}
    if not grids:
        return {}
    shapes = [g.shape for g in grids]
    pairs = shapely.STRtree(shapes).query(shapes, predicate="dwithin", distance=_TOUCH_EPS)
    for i, j in zip(*pairs, strict=True):
        if i != j:
            found[grids[i].id].add(grids[j].id)
    return {k: frozenset(v) for k, v in found.items()}


def load_geography(path: Path) -> Geography:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GeographyError(f"{path}: {exc}") from exc
    return parse_geography(doc, str(path))


def parse_geography(doc: object, source: str = "geography") -> Geography:
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise GeographyError(f"{source}: not a GeoJSON FeatureCollection")
    features = doc.get("features")
    if not isinstance(features, list):
        raise GeographyError(f"{source}: features must be a list")
    areas = []
    for i, feature in enumerate(features):
        try:
            areas.append(parse_area(feature))
        except GeographyError as exc:
            raise GeographyError(f"{source} feature {i}: {exc}") from None
    try:
        return Geography.build(areas)
    except GeographyError as exc:
        raise GeographyError(f"{source}: {exc}") from None


def parse_area(feature: object, geometry: object = None) -> Area:
    """One Polygon or MultiPolygon feature (or its properties plus a separate geometry) as an
    `Area`."""
    if not isinstance(feature, dict):
        raise GeographyError("not a GeoJSON feature")
    props = feature.get("properties")
    geometry = feature.get("geometry") if geometry is None else geometry
    if not isinstance(props, dict):
        raise GeographyError("properties must be an object")
    area_id, kind = props.get("id"), props.get("kind")
    if not isinstance(area_id, str) or not area_id:
        raise GeographyError("properties.id must be a non-empty string")
    if kind not in ("district", "grid"):
        raise GeographyError(f"{area_id}: kind must be 'district' or 'grid', not {kind!r}")
    district = area_id if kind == "district" else props.get("district")
    if not isinstance(district, str) or not district:
        raise GeographyError(f"{area_id}: a grid cell needs properties.district")
    try:
        check(Kind.DISTRICT if kind == "district" else Kind.GRID, area_id)
        check(Kind.DISTRICT, district)
    except InvalidNameError as exc:
        raise GeographyError(str(exc)) from None
    name = props.get("name") or area_id
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        raise GeographyError(f"{area_id}: geometry must be a Polygon or a MultiPolygon")
    coords = geometry.get("coordinates")
    if geometry["type"] == "Polygon":
        polygons: tuple[Polygon, ...] = (_rings(area_id, coords),)
    elif isinstance(coords, list) and coords:
        polygons = tuple(_rings(area_id, polygon) for polygon in coords)
    else:
        raise GeographyError(f"{area_id}: MultiPolygon coordinates must be a list of polygons")
    area = Area(area_id, str(name), kind, district, polygons)
    if not area.shape.is_valid:  # e.g. a ring crossing itself, or islands that overlap
        raise GeographyError(f"{area_id}: invalid shape: {explain_validity(area.shape)}")
    return area


def _rings(area_id: str, coords: object) -> tuple[Ring, ...]:
    if not isinstance(coords, list) or not coords:
        raise GeographyError(f"{area_id}: Polygon coordinates must be a list of rings")
    rings = []
    for ring in coords:
        if not isinstance(ring, list) or len(ring) < 4:
            raise GeographyError(f"{area_id}: a ring needs at least 4 positions")
        pts = tuple(_position(area_id, p) for p in ring)
        if pts[0] != pts[-1]:
            raise GeographyError(f"{area_id}: ring is not closed (first != last position)")
        rings.append(pts)
    xs, ys = np.asarray(rings[0]).T
    if abs(np.dot(xs[:-1], ys[1:]) - np.dot(xs[1:], ys[:-1])) == 0:
        raise GeographyError(f"{area_id}: exterior ring has zero area")
    return tuple(rings)


def _position(area_id: str, p: object) -> tuple[float, float]:
    if isinstance(p, list) and len(p) >= 2:
        lon, lat = p[0], p[1]
        numbers = all(isinstance(c, int | float) and not isinstance(c, bool) for c in (lon, lat))
        if numbers and -180 <= lon <= 180 and -90 <= lat <= 90:  # NaN fails the comparisons
            return float(lon), float(lat)
    raise GeographyError(f"{area_id}: bad [lon, lat] position {p!r:.60}")
