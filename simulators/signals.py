"""Vectorized signal models: what every device of the synthetic city reads at any time.

A value is a pure function of (city, device, timestamp): noise comes from a
counter-based hash of (seed, device, ts_ms, metric) rather than a stateful
generator, so any batching, ordering or replay of the same readings gives the
same numbers. Slow variation (pollution episodes, showers, river level) is
hash-based value noise interpolated between coarse time knots; showers and
pollution episodes are shared by a district or the whole city, so neighbouring
sensors agree as real ones do.

This is a city on an ordinary day: every reading stays within what the shipped rule pack
accepts for its sensor's place (a noise monitor's zone, a road's free-flow speed, a gauge's
warning level) at every hour, so the pack raises nothing; emergencies are injected on top.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from simulators.city import City

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = (np.uint64(k) for k in (30, 27, 31, 11))
_HOUR_S, _DAY_S = 3600.0, 86400.0


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic is intended)."""
    x = x + _GOLDEN
    x = (x ^ (x >> _S30)) * _M1
    x = (x ^ (x >> _S27)) * _M2
    return x ^ (x >> _S31)


def _uniform(seed: int, salt: int, *keys: np.ndarray) -> np.ndarray:
    h = np.full(keys[0].shape, (seed * 1_000_003 + salt) & 0xFFFFFFFFFFFFFFFF, np.uint64)
    for key in keys:
        h = _mix(h ^ key.astype(np.uint64))
    return (h >> _S11).astype(np.float64) * 2.0**-53


def noise(seed: int, salt: int, dev: np.ndarray, ts_ms: np.ndarray) -> np.ndarray:
    """Standard normal per (device, ts), Box-Muller over two hashed uniforms: the same reading
    gets the same noise however the run is cut into frames."""
    u1 = _uniform(seed, 2 * salt, dev, ts_ms)
    u2 = _uniform(seed, 2 * salt + 1, dev, ts_ms)
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2 * np.pi * u2)


def _bump(hour: np.ndarray, peak_h: float, width_h: float) -> np.ndarray:
    return np.exp(-0.5 * ((hour - peak_h) / width_h) ** 2)


def demand(hour: np.ndarray, weekend: np.ndarray) -> np.ndarray:
    """Road demand as a fraction of capacity: weekday rush hours 7-9 and 17-19."""
    weekday = 0.08 + 0.42 * _bump(hour, 13, 4.5) + 0.5 * _bump(hour, 8, 1.0)
    weekday = weekday + 0.5 * _bump(hour, 18, 1.2)
    weekend_day = 0.08 + 0.55 * _bump(hour, 14.5, 4.0)
    return np.minimum(np.where(weekend, weekend_day, weekday), 1.0)


class _Ctx:
    """The devices and times of one type's share of a call, with their local clock."""

    def __init__(self, city: City, dev: np.ndarray, ts_ms: np.ndarray) -> None:
        self.city, self.dev, self.ts_ms = city, dev, ts_ms
        self.t_s = ts_ms / 1000.0
        local_s = self.t_s + city.utc_offset_s
        self.hour = (local_s / _HOUR_S) % 24
        day = np.floor(local_s / _DAY_S)
        self.weekend = ((day + 3) % 7 >= 5) | np.isin(day, city.holiday_days)  # 1970-01-01: Thu
        self.district = city.district_index[dev]
        self.everywhere = np.zeros_like(dev)
        self.demand = demand(self.hour, self.weekend)

    def attr(self, name: str) -> np.ndarray:
        return self.city.attrs[name][self.dev]

    def noise(self, salt: int) -> np.ndarray:
        return noise(self.city.seed, salt, self.dev, self.ts_ms)

    def smooth(self, key: np.ndarray, period_s: float, salt: int) -> np.ndarray:
        """Value noise in [0, 1] for `key`, varying smoothly over `period_s`."""
        pos = self.t_s / period_s
        knot = np.floor(pos)
        f = pos - knot
        knot = knot.astype(np.int64)
        a = _uniform(self.city.seed, salt, key, knot)
        b = _uniform(self.city.seed, salt, key, knot + 1)
        return a + (b - a) * f * f * (3 - 2 * f)

    def daily(self, peak_h: float) -> np.ndarray:
        return np.cos(2 * np.pi * (self.hour - peak_h) / 24)

    def rain_mm_h(self) -> np.ndarray:
        """District showers, more of them on wet days; zero most of the time."""
        shower = self.smooth(self.district, 40 * 60, salt=20)
        threshold = 0.93 - 0.15 * self.smooth(self.everywhere, _DAY_S, salt=21)
        return 25 * (np.maximum(shower - threshold, 0) / (1 - threshold)) ** 2


Model = Callable[[_Ctx], dict[str, np.ndarray]]


def _air_quality(c: _Ctx) -> dict[str, np.ndarray]:
    episode = 0.7 + 0.6 * c.smooth(c.everywhere, 12 * _HOUR_S, salt=10)
    pm25 = c.attr("pm25_base") * episode * (1 + 0.25 * c.daily(6)) * (1 + 0.08 * c.noise(11))
    return {
        "pm25": pm25,
        "pm10": pm25 * c.attr("pm10_ratio") + 4 * c.noise(12),
        "no2": 15 + 35 * c.demand + 0.25 * pm25 + 3 * c.noise(13),
        "o3": 20 + 90 * np.maximum(c.daily(15), 0) ** 1.5 / episode + 4 * c.noise(14),
        "so2": 4 + 0.06 * pm25 + 0.8 * c.noise(15),
        "co": 0.3 + 0.012 * pm25 + 0.05 * c.noise(16),
    }


def _noise(c: _Ctx) -> dict[str, np.ndarray]:
    return {"laeq_db": c.attr("quiet_db") + c.attr("rush_rise_db") * c.demand + c.noise(21)}


def _water_level(c: _Ctx) -> dict[str, np.ndarray]:
    slow = 0.15 * (2 * c.smooth(c.dev, 12 * _HOUR_S, salt=30) - 1)
    daily = 0.04 * np.sin(2 * np.pi * c.t_s / _DAY_S + c.attr("phase"))
    return {"level_m": c.attr("level_base_m") + slow + daily + 0.005 * c.noise(31)}


def _rain_gauge(c: _Ctx) -> dict[str, np.ndarray]:
    return {"rain_mm_h": c.rain_mm_h() * (1 + 0.1 * c.noise(41))}


def _traffic_flow(c: _Ctx) -> dict[str, np.ndarray]:
    d = c.demand
    return {
        "flow_vph": c.attr("capacity_vph") * d * (1 + 0.06 * c.noise(51)),
        "speed_kmh": c.attr("free_flow_kmh") * (1 - 0.55 * d**2) * (1 + 0.04 * c.noise(52)),
        "occupancy_pct": 2 + 45 * d**2 + 1.5 * c.noise(53),
    }


def _gas(c: _Ctx) -> dict[str, np.ndarray]:
    return {"lel_pct": np.abs(0.15 * c.noise(61))}


def _smoke(c: _Ctx) -> dict[str, np.ndarray]:
    return {
        "obscuration_pct_m": np.abs(0.01 * c.noise(71)),
        "temp_c": 21 + c.attr("temp_offset_c") + 1.5 * c.daily(16) + 0.2 * c.noise(72),
    }


def _manhole(c: _Ctx) -> dict[str, np.ndarray]:
    surge = 0.8 * np.minimum(c.rain_mm_h() / 30, 1)
    return {
        "cover_open": np.zeros(len(c.dev)),
        "level_m": c.attr("level_base_m") + surge + 0.01 * c.noise(81),
    }


def _structural(c: _Ctx) -> dict[str, np.ndarray]:
    return {
        "strain_ue": c.attr("strain_base_ue") + 40 * c.daily(15) + 4 * c.noise(91),
        "tilt_deg": c.attr("tilt_base_deg") + 0.003 * c.noise(92),
    }


def _weather(c: _Ctx) -> dict[str, np.ndarray]:
    synoptic = 6 * (c.smooth(c.everywhere, 3 * _DAY_S, salt=100) - 0.5)
    wet = np.minimum(c.rain_mm_h() / 10, 1)
    return {
        "temp_c": 13 + c.attr("temp_offset_c") + 7 * c.daily(15) + synoptic + 0.2 * c.noise(101),
        "humidity_pct": 50 - 15 * c.daily(15) + 30 * wet + 2 * c.noise(102),
        "wind_ms": 1 + 5 * c.smooth(c.district, 3 * _HOUR_S, salt=103) + 0.4 * np.abs(c.noise(104)),
    }


MODELS: dict[str, Model] = {
    "air_quality": _air_quality,
    "noise": _noise,
    "water_level": _water_level,
    "rain_gauge": _rain_gauge,
    "traffic_flow": _traffic_flow,
    "gas": _gas,
    "smoke": _smoke,
    "manhole": _manhole,
    "structural": _structural,
    "weather": _weather,
}


def values(city: City, device_idx: np.ndarray, ts_ms: np.ndarray | int) -> dict[str, np.ndarray]:
    """Readings of `city.devices[device_idx[i]]` at `ts_ms[i]` (epoch ms), by metric name.

    Each array is parallel to `device_idx`; it is NaN where the device's type has
    no such metric. Values are clipped to the catalogue's valid range.
    """
    dev = np.asarray(device_idx, dtype=np.int64)
    ts = np.broadcast_to(np.asarray(ts_ms, dtype=np.int64), dev.shape)
    names = {m for t in city.catalogue.values() for m in t.metrics}
    out = {m: np.full(dev.shape, np.nan) for m in sorted(names)}
    types = city.type_index[dev]
    for k, type_name in enumerate(city.type_names):
        sel = np.flatnonzero(types == k)
        if sel.size == 0:
            continue
        metrics = city.catalogue[type_name].metrics
        for metric, v in MODELS[type_name](_Ctx(city, dev[sel], ts[sel])).items():
            out[metric][sel] = np.clip(v, metrics[metric].min, metrics[metric].max)
    return out
