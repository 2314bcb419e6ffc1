"""City geography: districts and grid cells, point location and grid neighbours.

The wire/file format is a GeoJSON FeatureCollection of Polygon features whose
properties are ``{"id", "name", "kind": "district"|"grid", "district"}``; a grid
cell names the district it belongs to; ids follow `devices.names`, the name is free text.
Coordinates are GeoJSON ``[lon, lat]``.

`Geography.locate` uses even-odd ray casting over all polygon edges at once
(numpy); holes work because their edges count like any other. A point on a
shared border goes to the first area (file order) that claims it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from devices.errors import GeographyError, InvalidNameError
from devices.names import Kind, check

AreaKind = Literal["district", "grid"]
Ring = tuple[tuple[float, float], ...]
_TOUCH_EPS = 1e-9
_CHUNK_CELLS = 4_000_000


@dataclass(frozen=True)
class Area:
    id: str
    name: str
    kind: AreaKind
    district: str
    rings: tuple[Ring, ...]  # exterior first, then holes; (lon, lat) positions, closed

    def geometry(self) -> dict:
        return {"type": "Polygon", "coordinates": [[list(p) for p in ring] for ring in self.rings]}

    def feature(self) -> dict:
        props = {"id": self.id, "name": self.name, "kind": self.kind, "district": self.district}
        return {"type": "Feature", "properties": props, "geometry": self.geometry()}


class _EdgeIndex:
    """All edges of a list of areas as flat arrays, grouped by area."""

    def __init__(self, areas: tuple[Area, ...]) -> None:
        edges, starts, n_edges = [], [], 0
        for area in areas:
            starts.append(n_edges)
            for ring in area.rings:
                pts = np.asarray(ring, dtype=np.float64)
                edges.append(np.hstack([pts[:-1], pts[1:]]))
                n_edges += len(ring) - 1
        e = np.vstack(edges) if edges else np.empty((0, 4))
        self.x1, self.y1, self.x2, self.y2 = e.T
        dy = self.y2 - self.y1
        self.slope = (self.x2 - self.x1) / np.where(dy == 0, 1.0, dy)
        self.starts = np.asarray(starts, dtype=np.intp)

    def first_containing(self, lon: np.ndarray, lat: np.ndarray) -> npt.NDArray[np.intp]:
        """Index of the first area containing each point, -1 where none does."""
        out = np.full(len(lon), -1, dtype=np.intp)
        if not len(self.starts) or not len(lon):
            return out
        step = max(1, _CHUNK_CELLS // len(self.x1))
        for lo in range(0, len(lon), step):
            px, py = lon[lo : lo + step, None], lat[lo : lo + step, None]
            spans = (self.y1 > py) != (self.y2 > py)
            crosses = spans & (px < self.x1 + (py - self.y1) * self.slope)
            inside = np.add.reduceat(crosses.astype(np.int32), self.starts, axis=1) % 2 == 1
            out[lo : lo + step] = np.where(inside.any(axis=1), inside.argmax(axis=1), -1)
        return out


@dataclass(frozen=True)
class Geography:
    districts: tuple[Area, ...]
    grids: tuple[Area, ...]
    _district_index: _EdgeIndex = field(init=False, repr=False, compare=False)
    _grid_index: _EdgeIndex = field(init=False, repr=False, compare=False)
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
        object.__setattr__(self, "_district_index", _EdgeIndex(self.districts))
        object.__setattr__(self, "_grid_index", _EdgeIndex(self.grids))
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
    """Cells touch when a vertex of one lies on an edge of the other (edge or corner)."""
    found: dict[str, set[str]] = {g.id: set() for g in grids}
    if not grids:
        return {}
    boxes = np.array([_bbox(g) for g in grids])
    lo, hi = boxes[:, :2] - _TOUCH_EPS, boxes[:, 2:] + _TOUCH_EPS
    overlap = ((lo[:, None, :] <= hi[None, :, :]) & (lo[None, :, :] <= hi[:, None, :])).all(-1)
    for i, j in zip(*np.nonzero(np.triu(overlap, k=1)), strict=True):
        a, b = grids[i], grids[j]
        if _vertex_on_edge(a, b) or _vertex_on_edge(b, a):
            found[a.id].add(b.id)
            found[b.id].add(a.id)
    return {k: frozenset(v) for k, v in found.items()}


def _bbox(area: Area) -> tuple[float, float, float, float]:
    pts = np.asarray(area.rings[0])
    return pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()


def _vertex_on_edge(a: Area, b: Area) -> bool:
    v = np.asarray(a.rings[0][:-1])[:, None, :]
    ring = np.asarray(b.rings[0])
    p, q = ring[:-1][None], ring[1:][None]
    d = q - p
    t = np.clip(((v - p) * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-300), 0.0, 1.0)
    dist = np.linalg.norm(v - (p + t[..., None] * d), axis=-1)
    return bool((dist <= _TOUCH_EPS).any())


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
    """One Polygon feature (or its properties plus a separate geometry) as an `Area`."""
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
    if not isinstance(geometry, dict) or geometry.get("type") != "Polygon":
        raise GeographyError(f"{area_id}: geometry must be a Polygon")
    return Area(area_id, str(name), kind, district, _rings(area_id, geometry.get("coordinates")))


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
