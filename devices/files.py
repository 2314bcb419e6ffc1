"""Device files: CSV and GeoJSON in, GeoJSON out.

CSV columns: ``id,type,district,grid,lat,lon,department,status,installed,gateway``
(only id, type, lat, lon and district are required; other columns are ignored), plus
one ``attr.<name>`` column per numeric device attribute (e.g. ``attr.warning_level``;
an empty cell means the device has none). GeoJSON: a FeatureCollection of Point
features, ``coordinates = [lon, lat]``, the other columns as properties and the
attributes as a ``properties.attributes`` object. When a geography is given, a
missing district or grid is filled in by locating the device's point. Every bad row is reported, as
``<file> line N`` (CSV, physical line) or ``<file> feature N`` (GeoJSON, 0-based).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import cast

from devices.catalogue import Catalogue
from devices.errors import DeviceFileError
from devices.geo import Geography
from devices.names import Kind, check
from devices.registry import Device, DeviceStatus

COLUMNS = (
    "id",
    "type",
    "district",
    "grid",
    "lat",
    "lon",
    "department",
    "status",
    "installed",
    "gateway",
)
SUFFIXES = (".csv", ".geojson", ".json")
UNKNOWN_SUFFIX = "unknown file type (use .csv or .geojson)"
ATTRIBUTE_COLUMN = "attr."  # prefix of a CSV column holding one numeric device attribute


def parse_device(fields: Mapping[str, object], catalogue: Catalogue) -> Device:
    """One device from column values (strings, numbers or None); ValueError names the problem."""
    values = {k: _text(fields.get(k)) for k in COLUMNS}
    device_id = check(Kind.DEVICE, values["id"])  # InvalidNameError is a ValueError
    attributes = _attributes(device_id, fields)
    if values["type"] not in catalogue:
        raise ValueError(f"unknown device type {values['type']!r}")
    if not values["district"]:
        raise ValueError("district is missing (and could not be located)")
    check(Kind.DISTRICT, values["district"])
    for kind, column in ((Kind.GRID, "grid"), (Kind.DEPARTMENT, "department"),
                         (Kind.DEVICE, "gateway")):
        if values[column]:
            check(kind, values[column])
    lat, lon = _coordinate(values["lat"], 90, "lat"), _coordinate(values["lon"], 180, "lon")
    try:
        status = DeviceStatus(values["status"] or "active")
    except ValueError:
        raise ValueError(f"unknown status {values['status']!r}") from None
    try:
        installed = date.fromisoformat(values["installed"]) if values["installed"] else None
    except ValueError:
        raise ValueError(f"installed must be YYYY-MM-DD, not {values['installed']!r}") from None
    return Device(
        id=device_id,
        type=values["type"],
        district=values["district"],
        lat=lat,
        lon=lon,
        grid=values["grid"],
        department=values["department"],
        status=status,
        installed=installed,
        gateway=values["gateway"] or None,
        attributes=cast("Mapping[str, float]", attributes),  # Device checks them (Attributes)
    )


def read_devices(
    path: Path, catalogue: Catalogue, geography: Geography | None = None
) -> list[Device]:
    """Devices from a .csv or .geojson/.json file; raises DeviceFileError listing every bad row."""
    if path.suffix.lower() not in SUFFIXES:
        raise DeviceFileError(str(path), [UNKNOWN_SUFFIX])
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DeviceFileError(str(path), [exc.strerror or str(exc)]) from exc
    return parse_devices(data, path.suffix, catalogue, geography, source=str(path))


def parse_devices(
    data: bytes, suffix: str, catalogue: Catalogue, geography: Geography | None = None,
    *, source: str,
) -> list[Device]:
    """Devices from the bytes of a device file of type `suffix` (.csv, .geojson or .json);
    DeviceFileError names `source` and lists every bad row."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DeviceFileError(source, [f"not UTF-8 text: {exc}"]) from None
    if suffix.lower() == ".csv":
        rows = _csv_rows(text, source)
    elif suffix.lower() in (".geojson", ".json"):
        rows = _geojson_rows(text, source)
    else:
        raise DeviceFileError(source, [UNKNOWN_SUFFIX])
    if geography is not None:
        _locate(rows, geography)
    devices, problems, seen = [], [], set()
    for where, fields in rows:
        try:
            device = parse_device(fields, catalogue)
            if device.id in seen:
                raise ValueError(f"duplicate id {device.id!r}")
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        seen.add(device.id)
        devices.append(device)
    if problems:
        raise DeviceFileError(source, problems)
    return devices


def device_record(device: Device) -> dict[str, object]:
    """The device as JSON-ready column values (the CSV columns, with numbers as numbers)."""
    return {
        "id": device.id,
        "type": device.type,
        "district": device.district,
        "grid": device.grid,
        "lat": device.lat,
        "lon": device.lon,
        "department": device.department,
        "status": device.status.value,
        "installed": device.installed.isoformat() if device.installed else None,
        "gateway": device.gateway,
        "attributes": dict(device.attributes),
    }


def devices_to_geojson(devices: Iterable[Device]) -> dict:
    features = []
    for device in devices:
        props = device_record(device)
        point = [props.pop("lon"), props.pop("lat")]
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": point},
                "properties": props,
            }
        )
    return {"type": "FeatureCollection", "features": features}


def write_devices_geojson(devices: Iterable[Device], path: Path) -> None:
    path.write_text(json.dumps(devices_to_geojson(devices), indent=1), encoding="utf-8")


_Row = tuple[str, dict[str, object]]


def _csv_rows(text: str, source: str) -> list[_Row]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = {"id", "type", "lat", "lon"} - set(reader.fieldnames or ())
    if missing:
        raise DeviceFileError(source, [f"line 1: missing columns {sorted(missing)}"])
    return [(f"line {reader.line_num}", dict(row)) for row in reader]


def _geojson_rows(text: str, source: str) -> list[_Row]:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise DeviceFileError(source, [f"not JSON: {exc}"]) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("features"), list):
        raise DeviceFileError(source, ["not a GeoJSON FeatureCollection"])
    rows: list[_Row] = []
    for i, feature in enumerate(doc["features"]):
        props = feature.get("properties") if isinstance(feature, dict) else None
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        point = geometry.get("coordinates") if isinstance(geometry, dict) else None
        if not isinstance(props, dict):
            props = {"id": None}
        elif not (
            isinstance(geometry, dict)
            and geometry.get("type") == "Point"
            and isinstance(point, list)
            and len(point) >= 2
        ):
            props = {**props, "lat": "not a Point geometry", "lon": None}
        else:
            props = {**props, "lon": point[0], "lat": point[1]}
        rows.append((f"feature {i}", props))
    return rows


def _locate(rows: list[_Row], geography: Geography) -> None:
    todo = []
    for _, fields in rows:
        if not (_text(fields.get("district")) and _text(fields.get("grid"))):
            try:
                lat = _coordinate(_text(fields.get("lat")), 90, "lat")
                lon = _coordinate(_text(fields.get("lon")), 180, "lon")
            except ValueError:
                continue  # reported by parse_device
            todo.append((fields, lat, lon))
    districts, grids = geography.locate_many([t[1] for t in todo], [t[2] for t in todo])
    for (fields, _, _), district, grid in zip(todo, districts, grids, strict=True):
        if not _text(fields.get("district")):
            fields["district"] = district
        if not _text(fields.get("grid")) and (district == fields["district"]):
            fields["grid"] = grid


def _attributes(device_id: str, fields: Mapping[str, object]) -> dict[str, object]:
    """The ``attributes`` object and the ``attr.<name>`` columns; empty cells are left out.

    Numbers in text are converted; names and values are checked by `Device` (`Attributes`).
    """
    given = fields.get("attributes")
    if given in (None, ""):
        given = {}
    if not isinstance(given, Mapping):
        raise ValueError(f"device {device_id}: attributes must be an object of numbers, "
                         f"not {given!r}")
    columns = {
        str(k).removeprefix(ATTRIBUTE_COLUMN): v
        for k, v in fields.items() if str(k).startswith(ATTRIBUTE_COLUMN)
    }
    both = sorted(set(given) & set(columns))
    if both:
        raise ValueError(f"device {device_id}: attributes {both} given twice")
    attributes: dict[str, object] = {}
    for name, value in {**given, **columns}.items():
        if isinstance(value, str):
            if not value.strip():
                continue
            with contextlib.suppress(ValueError):  # else `Attributes` names the bad value
                value = float(value)
        if value is not None:
            attributes[name] = value
    return attributes


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return repr(value)
    return str(value).strip()


def _coordinate(text: str, limit: float, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {text!r}") from None
    if not -limit <= value <= limit:  # NaN fails too
        raise ValueError(f"{name} {text} outside [-{limit}, {limit}]")
    return value
