"""A short scenario run through a real platform process, scored against its ground truth.

`urbanwatch serve --clock readings` (its own managed Mosquitto, the session's influxd, SQLite)
and `urbanwatch simulate` with a gas leak, a sensor dropout and a sensor whose clock runs an
hour ahead, 30 simulated minutes at 90x: the leak must become one safety incident for the gas
company, the dropout and the skewed clock device faults (no wall clock can tell the skew: only
the other devices' readings), and nothing else may be raised.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from simulators.city import build_city
from simulators.scenarios.truth import Truth
from tests.support.platform_process import PlatformProcess, serving
from tests.support.polling import eventually
from urbanwatch.demo import import_city
from urbanwatch.services.ports import free_port
from urbanwatch.settings import Settings

pytestmark = pytest.mark.timeout(300)  # well under a minute on an idle machine
DEVICES, SEED = 60, 2


@pytest.fixture
def managed_settings(tmp_path: Path, influxd, influx_db) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(
        state_dir=tmp_path / "state",
        mqtt={"port": free_port(), "client_id": f"uw-score-{uuid.uuid4().hex[:8]}"},
        influx={"url": influxd.url, "port": influxd.port, "database": influx_db.database},
    )


def _score(settings: Settings, truth: Path) -> dict:
    out = subprocess.run(
        [str(Path(sys.executable).with_name("urbanwatch")), "score", "--truth", str(truth),
         "--state-dir", str(settings.state_dir), "--json"],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout)


async def test_a_gas_leak_a_dropout_and_a_skewed_clock_are_scored(
    managed_settings: Settings, tmp_path: Path
) -> None:
    settings = managed_settings
    await import_city(settings, DEVICES, SEED)
    monitor, skewed = [d.id for d in build_city(DEVICES, SEED).devices
                       if d.type == "air_quality"][:2]
    truth = tmp_path / "truth.json"
    process = PlatformProcess(settings, tmp_path / "serve.log")
    process.env["URBANWATCH_CLOCK"] = "readings"
    async with serving(process):
        simulate = subprocess.run(
            [str(Path(sys.executable).with_name("urbanwatch")), "simulate",
             "--devices", str(DEVICES), "--seed", str(SEED), "--duration", "1800",
             "--speed", "90", "--state-dir", str(settings.state_dir),
             "--scenario", "gas_leak:start=5m,duration=20m",
             "--scenario", f"dropout:place={monitor},start=3m,duration=20m",
             "--scenario", f"clock_skew:place={skewed},start=4m,duration=20m,seed=1",
             "--truth", str(truth)],
            env={**process.env}, capture_output=True, text=True, timeout=240,
        )
        assert simulate.returncode == 0, simulate.stderr
        expected = Truth.read(truth)
        assert [e.kind for e in expected.events] == ["gas_leak"]
        assert [f.params.get("skew_ms") for f in expected.faults] == [None, 3_600_000]

        async def scored() -> bool:
            card = _score(settings, truth)
            return card["detected"] == 1 and card["faults_reported"] == 2

        await eventually(scored, "the leak detected, the dropout and the skew reported", 30)
    card = _score(settings, truth)
    assert (card["detected_share"], card["right_severity_share"], card["right_team_share"]) == (
        1.0, 1.0, 1.0)
    assert card["latency_intervals_median"] <= 2
    assert (card["false_incidents"], card["faults_handled_share"]) == (0, 1.0)
    assert card["incidents_per_event"] == 1.0
