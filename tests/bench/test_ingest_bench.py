"""The ingest benchmark's machinery on a tiny workload, against the real services.

Not a timing test: it checks that every published reading is counted back from InfluxDB
in every mode (including the spool while influxd is stopped) and that the JSON
result has its keys.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bench.ingest import BenchOptions, BenchSetup, run
from urbanwatch.database import migrate
from urbanwatch.services.influxd import Influxd
from urbanwatch.services.mosquitto import Mosquitto

RUNS = ("single_after_write", "single_on_receipt", "single_spool",
        "senml50_after_write", "senml50_on_receipt", "senml50_spool")


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_every_mode_stores_what_was_published(
    tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd
) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'devices.db'}"
    asyncio.run(migrate(db_url))
    stages: list[str] = []
    options = BenchOptions(devices=50, single_readings=2000, senml_readings=2000,
                           batch_size=500)

    result = run(BenchSetup(mosquitto, influxd, db_url, tmp_path / "work"), options,
                 lambda stage, done, total: stages.append(stage))

    assert set(result["runs"]) == set(RUNS) == set(result["readings_per_s"])
    for name, r in result["runs"].items():
        assert r["stored"] == r["readings"] == 2000, name
        assert r["rejected"] == 0 and r["readings_per_s"] > 0, name
        assert r["received"] >= r["messages"] and r["spool_left_bytes"] == 0, name
    assert result["runs"]["single_after_write"]["messages"] == 2000
    assert result["runs"]["senml50_after_write"]["messages"] == 40
    assert result["runs"]["senml50_spool"]["replayed"] == 2000
    assert set(result["after_write_vs_on_receipt"]) == set(result["spool_vs_influx"]) == {
        "single", "senml50"}
    assert influxd.answers()  # started again after the spool runs
    assert any(stage.startswith("single_spool") for stage in stages)
    json.dumps(result)  # one JSON object, as `--json` prints it
