"""`bench scale` on a tiny city against the real services (not a timing test): both rounds
work the whole stream off with real `serve --partition` workers over a throwaway PostgreSQL,
and the JSON carries the keys other tools read."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.scale import JSON_KEYS, ScaleOptions, Services, run
from urbanwatch.services.influxd import Influxd
from urbanwatch.services.mosquitto import Mosquitto

pytestmark = pytest.mark.timeout(600)


def test_one_and_two_workers_each_work_the_stream_off(
    tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd
) -> None:
    assert mosquitto.pid is not None and influxd.pid is not None
    services = Services(mosquitto.host, mosquitto.port, influxd.url, mosquitto.pid, influxd.pid)
    result = run(services, tmp_path, ScaleOptions(devices=300, messages=10_000))

    assert set(JSON_KEYS) <= set(result)
    one, two = result["one_worker_readings_per_s"], result["two_workers_readings_per_s"]
    assert one > 0 and two > 0 and result["ratio"] == round(two / one, 2)
    for n, r in enumerate(result["rounds"], start=1):
        assert r["workers"] == n and len(r["stored_by_worker"]) == n
        assert sum(r["stored_by_worker"]) >= 0.9 * result["readings"]
        assert all(stored > 0 for stored in r["stored_by_worker"])  # every worker took part
        assert {f"worker {k}" for k in range(1, n + 1)} <= set(r["cpu_s_per_1000_readings"])
