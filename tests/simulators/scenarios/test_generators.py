"""Each scenario generator produces what its ground truth says (pure: no broker, no platform)."""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import date

import numpy as np
import pytest

from simulators.city import build_city
from simulators.scenarios.base import Run
from simulators.scenarios.frame import Frame
from simulators.scenarios.plan import build_scenarios, truth
from simulators.scenarios.truth import Truth
from simulators.timed import Schedule, frames

CITY = build_city(250, seed=3)
MONDAY_MS = 1731859200000  # 2024-11-18 00:00 local (UTC+8)
HOUR_MS = 3_600_000


def _run(hours: float = 12) -> Run:
    return Run(CITY, MONDAY_MS + 10 * HOUR_MS, int(hours * HOUR_MS), seed=4)


@functools.cache
def _plain(hours: float) -> Frame:
    return _played(_run(hours), [])[1]


def _played(run: Run, specs: list[str]) -> tuple[Truth, Frame]:
    """Every reading of the run with the scenarios applied, as one frame (time order)."""
    scenarios = build_scenarios(run, specs)
    schedule = Schedule.of(CITY, run)
    next_ms = schedule.first_ms.copy()
    parts = []
    while (frame := frames(CITY, run, scenarios, run.end_ms, next_ms, schedule, 50_000)):
        parts.append(frame)
    keys = parts[0].values
    whole = Frame(
        np.concatenate([f.dev for f in parts]), np.concatenate([f.ts_ms for f in parts]),
        {m: np.concatenate([f.values[m] for f in parts]) for m in keys},
        np.concatenate([f.sent_ts_ms for f in parts]), np.concatenate([f.copies for f in parts]),
    )
    return truth(run, scenarios), whole


def _series(frame: Frame, device_id: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    i = next(k for k, d in enumerate(CITY.devices) if d.id == device_id)
    rows = np.flatnonzero(frame.dev == i)
    return frame.ts_ms[rows], frame.values[metric][rows]


def _first_at_or_above(ts: np.ndarray, v: np.ndarray, level: float) -> int:
    return int(ts[np.argmax(v >= level)]) if (v >= level).any() else -1


def test_gas_leak_climbs_through_20_and_50_percent_lel_and_neighbours_rise_less() -> None:
    t, frame = _played(_run(), ["gas_leak:start=1h,duration=40m"])
    (event,) = t.events
    assert (event.category, event.min_severity) == ("safety", "red")
    assert event.teams == ("gas-emergency",)
    ts, lel = _series(frame, event.first_device, "lel_pct")
    crossed = _first_at_or_above(ts, lel, 20)
    assert event.start_ms <= crossed <= event.start_ms + event.report_interval_s * 1000
    assert lel.max() >= 50
    assert lel[ts < event.onset_ms].max() < 1 and lel[ts >= event.end_ms].max() < 1
    for other in event.devices[1:]:
        assert 1 < _series(frame, other, "lel_pct")[1].max() < 20


def test_fire_brings_smoke_and_heat_together_at_one_site() -> None:
    t, frame = _played(_run(), ["fire:start=2h"])
    (event,) = t.events
    ts, smoke = _series(frame, event.first_device, "obscuration_pct_m")
    _, temp = _series(frame, event.first_device, "temp_c")
    crossed = _first_at_or_above(ts, smoke, 4)
    assert event.start_ms <= crossed <= event.start_ms + event.report_interval_s * 1000
    assert temp.max() >= 57 and event.devices == (event.first_device,)


def test_flood_rain_rises_then_low_cells_pass_their_warning_levels_one_after_another() -> None:
    t, frame = _played(_run(), ["flood:start=1h,duration=4h"])
    (event,) = t.events
    assert event.category == "flood" and event.districts and event.cells
    gauges = [d for d in event.devices if d.startswith("wl-")]
    rain = [d for d in event.devices if d.startswith("rg-")]
    assert gauges and rain
    crossings = []
    for gauge in gauges:
        ts, level = _series(frame, gauge, "level_m")
        i = next(k for k, d in enumerate(CITY.devices) if d.id == gauge)
        warning = CITY.attrs["warning_level_m"][i]
        crossings.append(_first_at_or_above(ts, level, warning))
        assert level[-1] < warning - 0.3  # receded
    assert min(crossings) > event.start_ms and crossings == sorted(crossings)
    for gauge in rain:
        ts, mm_h = _series(frame, gauge, "rain_mm_h")
        assert mm_h[(ts > event.onset_ms + HOUR_MS) & (ts < event.end_ms - HOUR_MS)].min() > 20


def test_traffic_accident_collapses_speed_on_consecutive_road_sensors() -> None:
    t, frame = _played(_run(), ["traffic_accident:start=3h,duration=45m"])
    (event,) = t.events
    columns = sorted(int(c.split("-")[2]) for c in event.cells)
    assert len(event.devices) >= 2 and columns == list(range(columns[0], columns[0] + len(columns)))
    for device in event.devices:
        ts, speed = _series(frame, device, "speed_kmh")
        _, occupancy = _series(frame, device, "occupancy_pct")
        i = next(k for k, d in enumerate(CITY.devices) if d.id == device)
        free = CITY.attrs["free_flow_kmh"][i]
        jammed = (ts >= event.start_ms + 60_000) & (ts < event.end_ms - 15 * 60_000)
        assert speed[jammed].max() < 0.5 * free and occupancy[jammed].min() > 50
        assert speed[ts < event.onset_ms].min() > 0.5 * free


def test_pollution_is_regional_and_its_hourly_mean_passes_75_at_the_start() -> None:
    t, frame = _played(_run(16), ["pollution:place=haidian,start=1h,duration=8h"])
    (event,) = t.events
    assert len(event.districts) == 3 and event.min_severity in ("orange", "red")
    ts, pm25 = _series(frame, event.first_device, "pm25")
    hour = (ts > event.start_ms - HOUR_MS) & (ts <= event.start_ms + 60_000)
    assert pm25[hour].mean() > 70  # the 1-h mean at the hazard start (one reading of slack)
    districts = {CITY.devices[i].district for i in np.unique(frame.dev)
                 if CITY.devices[i].id in event.devices}
    assert districts == set(event.districts)


def test_structural_drifts_towards_its_allowables_without_reaching_them() -> None:
    t, frame = _played(_run(), ["structural:start=1h,duration=6h"])
    (event,) = t.events
    i = next(k for k, d in enumerate(CITY.devices) if d.id == event.first_device)
    ts, tilt = _series(frame, event.first_device, "tilt_deg")
    allow = CITY.attrs["tilt_allow_deg"][i]
    assert 0.8 * allow <= tilt.max() < allow
    assert _first_at_or_above(ts, tilt, 0.6 * allow) >= event.start_ms - 60_000


@pytest.mark.parametrize("kind", ["stuck", "drift", "spike", "dropout", "gateway_offline",
                                  "clock_skew", "duplicates", "garbage"])
def test_each_fault_changes_its_devices_only_and_as_its_truth_says(kind: str) -> None:
    t, frame = _played(_run(6), [f"{kind}:start=1h,duration=3h"])
    plain = _plain(6)
    (fault,) = t.faults
    faulty = np.isin(frame.dev, [k for k, d in enumerate(CITY.devices) if d.id in fault.devices])
    inside = faulty & (frame.ts_ms >= fault.start_ms) & (frame.ts_ms < fault.end_ms)
    for metric, column in frame.values.items():
        np.testing.assert_array_equal(column[~inside], plain.values[metric][~inside], metric)
    assert (frame.copies[~inside] == 1).all()
    assert (frame.sent_ts_ms[~inside] == frame.ts_ms[~inside]).all()
    metric = fault.params.get("metric")
    changed = {
        "stuck": lambda: all(len(np.unique(c[inside][~np.isnan(c[inside])])) <= 1
                             for c in frame.values.values()),
        "drift": lambda: (frame.values[metric][inside] >= plain.values[metric][inside]).all(),
        "spike": lambda: (frame.values[metric][inside] != plain.values[metric][inside]).sum() == 3,
        "dropout": lambda: (frame.copies[inside] == 0).all(),
        "gateway_offline": lambda: (frame.copies[inside] == 0).all() and len(fault.devices) > 1,
        "clock_skew": lambda: (np.abs(frame.sent_ts_ms[inside] - frame.ts_ms[inside])
                               == abs(fault.params["skew_ms"])).all(),
        "duplicates": lambda: (frame.copies[inside] == 2).all(),
        "garbage": lambda: bool(((frame.values[metric][inside] > 1000)
                                 | (frame.values[metric][inside] < -1000)).all()),
    }[kind]
    assert inside.any() and changed()


def test_a_run_is_reproducible_and_its_truth_round_trips() -> None:
    first, frame = _played(_run(16), ["mix:count=1,seed=9"])
    again, frame2 = _played(_run(16), ["mix:count=1,seed=9"])
    assert first == again and Truth.from_json(first.to_json()) == first
    assert len(first.events) == 6 and len(first.faults) == 8
    np.testing.assert_array_equal(frame.values["pm25"], frame2.values["pm25"])


@pytest.mark.parametrize("spec", ["nope", "gas_leak:place=nowhere", "fire:start", "flood:size=3",
                                  "gas_leak:intensity=0.1", "pollution:place=g-0-0"])
def test_a_bad_spec_is_refused_with_its_reason(spec: str) -> None:
    with pytest.raises(ValueError, match="--scenario"):
        build_scenarios(_run(), [spec])


def test_a_mix_never_acts_twice_on_one_device_at_once() -> None:
    """Scenarios of a mix keep apart: two on one device (a spike on a stuck sensor) would hide
    what the truth says of either."""
    placed = build_scenarios(_run(72), ["mix:count=3,seed=7"])
    spans = [(set(s.truth.devices), getattr(s.truth, "onset_ms", s.truth.start_ms),
              s.truth.end_ms) for s in placed]
    for k, (devices, start, end) in enumerate(spans):
        for other, o_start, o_end in spans[:k]:
            assert devices.isdisjoint(other) or end <= o_start or o_end <= start


def test_a_crowded_mix_keeps_episodes_of_one_kind_apart() -> None:
    """Three 8-h pollution episodes in a day cannot all keep off every other scenario's
    devices; they still keep off each other's districts while they overlap in time."""
    placed = build_scenarios(_run(24), ["mix:count=3,seed=11"])
    spans = [(s.truth.kind, set(s.truth.devices), getattr(s.truth, "onset_ms", s.truth.start_ms),
              s.truth.end_ms) for s in placed]
    for k, (kind, devices, start, end) in enumerate(spans):
        for other_kind, other, o_start, o_end in spans[:k]:
            if kind == other_kind:
                assert devices.isdisjoint(other) or end <= o_start or o_end <= start


def test_the_truth_lists_the_city_s_own_holidays_inside_the_run() -> None:
    extra = date(2024, 11, 19)  # the Tuesday after MONDAY_MS, a local festival
    city = replace(CITY, holidays=CITY.holidays | {extra})
    run = Run(city, MONDAY_MS, 3 * 24 * HOUR_MS, seed=4)
    assert truth(run, []).holidays == (extra.isoformat(),)
    assert truth(_run(), []).holidays == ()
