"""`bench limits` on a tiny workload against the real services (not a timing test): the C
publisher and subscriber carry every message at QoS 0 and 1, and every point written is
counted back; the ceilings and the fractions other benchmarks derive from them."""

from __future__ import annotations

from pathlib import Path

from bench.limits import PAYLOAD_BYTES, fractions, run
from urbanwatch.services.influxd import Influxd
from urbanwatch.services.mosquitto import Mosquitto


def test_limits_carry_and_count_every_message_and_point(
    tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd
) -> None:
    result = run(mosquitto.host, mosquitto.port, influxd.url, tmp_path, messages=2000,
                 points=25_000, batch=10_000)

    assert result["payload_bytes"] == PAYLOAD_BYTES
    first = (tmp_path / f"limits-{PAYLOAD_BYTES}.txt").read_text().splitlines()[0]
    assert len(first.split("\t")[1]) == PAYLOAD_BYTES
    for qos in (0, 1):
        mqtt = result[f"mqtt_qos{qos}"]
        assert mqtt["received"] == 2000 and mqtt["lost"] == 0  # one local subscriber keeps up
        assert result[f"mqtt_qos{qos}_messages_per_s"] == mqtt["messages_per_s"] > 0
    write = result["influx_write"]
    assert write["stored"] == write["points"] == 25_000
    assert result["influx_points_per_s"] == write["points_per_s"] > 0
    half = fractions(result, x=(result["influx_points_per_s"] / 2, "influx_points_per_s"))
    assert half == {"x": 0.5}
