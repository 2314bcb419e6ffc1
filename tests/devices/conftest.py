"""Fixtures for `devices`: a tiny city geography.

The SQL databases (`db_url` over SQLite and PostgreSQL, `pg_server`) moved to
`tests/support/postgres.py`, registered for every package in `tests/conftest.py`.
"""

from __future__ import annotations

import pytest


def _square(lon: float, lat: float, size: float) -> list[list[float]]:
    return [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]


@pytest.fixture
def city_geojson() -> dict:
    """Districts west (lon 0..2) and east (lon 2..4), lat 0..2; 1x1 grid cells w-0-0 ... e-1-1."""
    features = []
    for d, lon0 in (("west", 0.0), ("east", 2.0)):
        features.append(
            {
                "type": "Feature",
                "properties": {"id": d, "name": d.title(), "kind": "district"},
                "geometry": {"type": "Polygon", "coordinates": [_square(lon0, 0.0, 2.0)]},
            }
        )
        for i in range(2):
            for j in range(2):
                cell = f"{d[0]}-{i}-{j}"
                props = {"id": cell, "name": cell, "kind": "grid", "district": d}
                square = _square(lon0 + i, float(j), 1.0)
                features.append(
                    {
                        "type": "Feature",
                        "properties": props,
                        "geometry": {"type": "Polygon", "coordinates": [square]},
                    }
                )
    return {"type": "FeatureCollection", "features": features}
