"""Names of any text through a real influxd: what is written is what InfluxQL finds again.

The names are drawn (seeded) from an alphabet of everything that needs escaping, so this
checks the line-protocol escaping, the InfluxQL quoting and the reference reader used by the
property tests against InfluxDB itself.
"""

from __future__ import annotations

import random
import time

from devices.batch import ReadingBatch
from devices.catalogue import DeviceType, Metric
from devices.registry import Device, Registry
from ingest.timeseries.client import InfluxClient
from ingest.timeseries.history import latest_values, series_history
from ingest.timeseries.influxql import quote_ident
from ingest.timeseries.lineprotocol import REPLACEMENT, LineEncoder, escape_key
from tests.support.lineprotocol_reader import parse_line

TS = (int(time.time()) // 60 - 60) * 60_000  # an hour ago: inside the 30d raw policy
ALPHABET = 'ab\\ ,="\'#\n\r\t\0é{}'


def _names(rng: random.Random, n: int, prefix: str) -> list[str]:
    return list(dict.fromkeys(
        prefix + "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 6)))
        for _ in range(n)))


def _carried_as_is(name: str) -> bool:
    return REPLACEMENT not in escape_key(name) and not any(c in name for c in "\r\n\t\0")


def _registry(seed: int, *, carried: bool) -> Registry:
    rng = random.Random(seed)
    keep = _carried_as_is if carried else (lambda _: True)
    types = [t for t in _names(rng, 12, "") if keep(t) and not t.startswith("#")][:4]
    metrics = [m for m in _names(rng, 12, "") if keep(m)][:3]
    ids = [d for d in _names(rng, 80, "d") if keep(d)]
    catalogue = {t: DeviceType(t, "", 60.0, {m: Metric(m, "", 0, 1) for m in metrics})
                 for t in types}
    return Registry.build(catalogue, [
        Device(d, types[i % len(types)], rng.choice(ids), 0.0, 0.0, grid=rng.choice(ids))
        for i, d in enumerate(ids)])


async def _store(influx: InfluxClient, registry: Registry) -> bytes:
    n = registry.n_series
    batch = ReadingBatch.from_columns(range(n), [TS] * n, [float(s) for s in range(n)])
    body = LineEncoder(registry).encode(batch).body
    await influx.write(body)
    return body


async def test_names_written_as_is_are_found_by_influxql(influx_db: InfluxClient) -> None:
    registry = _registry(1, carried=True)
    await _store(influx_db, registry)
    for device in registry.devices.values():
        metrics = list(registry.catalogue[device.type].metrics)
        latest = await latest_values(influx_db, measurement=device.type, device_id=device.id,
                                     metrics=metrics)
        expected = [float(registry.slot(device.id, m)) for m in metrics]  # type: ignore[arg-type]
        assert [(x.metric, x.ts_ms, x.value) for x in latest] == list(
            zip(metrics, [TS] * len(metrics), expected, strict=True))
        history = await series_history(influx_db, measurement=device.type, device_id=device.id,
                                       metric=metrics[0], start_ms=TS, end_ms=TS + 1)
        assert history.value.tolist() == expected[:1]


async def test_influxdb_stores_what_the_reference_reader_reads(influx_db: InfluxClient) -> None:
    registry = _registry(2, carried=False)
    body = await _store(influx_db, registry)
    expected: dict[str, set[tuple[str, ...]]] = {}
    for line in map(parse_line, body.decode().splitlines()):
        tags = tuple(line.tags.get(k, "") for k in ("device_id", "district", "grid"))
        expected.setdefault(line.measurement, set()).add(tags + tuple(sorted(line.fields)))
    stored: dict[str, set[tuple[str, ...]]] = {}
    for measurement in expected:
        series = await influx_db.query(f"SELECT * FROM {quote_ident(measurement)}")
        for s in series:
            columns = s["columns"]
            for row in s["values"]:
                tags = tuple(row[columns.index(k)] or "" for k in ("device_id", "district",
                                                                    "grid"))
                fields = sorted(c for c, v in zip(columns, row, strict=True)
                                if c not in ("time", "device_id", "district", "grid")
                                and v is not None)
                stored.setdefault(s["name"], set()).add(tags + tuple(fields))
    assert stored == expected
