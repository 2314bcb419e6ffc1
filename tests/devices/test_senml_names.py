"""The device ids a gateway's SenML pack names, read without refusing anything."""

from __future__ import annotations

from devices.senml import named_devices


def test_names_resolve_through_the_base_name() -> None:
    pack = [
        {"bn": "urn:dev:aq-1:", "n": "pm25", "v": 1},
        {"n": "pm10", "v": 2},
        {"bn": "urn:dev:", "n": "wl-2:level_m", "v": 3},
        {"bn": "urn:dev:gas-4:lel_pct", "v": 5},
    ]
    assert named_devices(pack, 10) == {"aq-1", "wl-2", "gas-4"}


def test_what_is_not_a_well_formed_record_is_passed_over() -> None:
    pack = [7, {"bn": 3, "n": "urn:dev:aq-1:pm25"}, {"n": ["x"]}, {"n": "pm25"},
            {"n": "urn:dev::pm25"}, {"n": "urn:dev:aq-2:pm25"}]
    assert named_devices(pack, 10) == {"aq-1", "aq-2"}
    assert named_devices({"n": "urn:dev:aq-1:pm25"}, 10) == set()


def test_at_most_limit_ids() -> None:
    pack = [{"n": f"urn:dev:aq-{k}:pm25", "v": 1} for k in range(50)]
    assert named_devices(pack, 7) == {f"aq-{k}" for k in range(7)}
