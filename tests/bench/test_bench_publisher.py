"""The benchmark's C publisher refuses to start when the broker does not accept it."""

from __future__ import annotations

from pathlib import Path

from simulators import c_publisher
from urbanwatch.services.mosquitto import Mosquitto


def test_publisher_stops_with_the_reason_when_the_broker_refuses_it(
    tmp_path: Path, secured_mosquitto: Mosquitto
) -> None:
    binary = c_publisher.build(tmp_path)
    messages = tmp_path / "messages.txt"
    messages.write_text('city/d1/aq-1/data\t{"m": {"pm25": 1}}\n')
    proc = c_publisher.publish(binary, secured_mosquitto.host, secured_mosquitto.port, messages, 10)
    out, err = proc.communicate(timeout=30)  # before: waited 60 s for PUBACKs that never came
    assert proc.returncode == 1
    assert "did not accept the connection" in err
    assert out == ""
