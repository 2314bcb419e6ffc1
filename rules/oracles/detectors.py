"""Test oracle: plain per-reading reference implementations of every detector.

Slow scalar versions used by the property tests to check the vectorized detectors in
`rules.detectors`; never used in production. Each mirrors its vectorized twin with scalar Python
arithmetic in the same order, so the two agree exactly; state is a dict per slot. ``score`` changes
nothing; ``update`` learns.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from typing import Any

import numpy as np
from scipy.special import log_ndtr

from rules.detectors.likelihood import LN10
from rules.detectors.robust_z import MAD_TO_STD
from rules.detectors.seasonal import utc_offsets_ms


def _squash(z: float, z_scale: float) -> float:
    return z / (z + z_scale)


def _weight(dt_ms: int, tau_s: float) -> float:
    """EW weight of a reading ``dt_ms`` after the previous one (a gap counts as at most tau)."""
    tau_ms = tau_s * 1000.0
    dt = float(min(max(dt_ms, 0), tau_ms))
    return dt / (dt + tau_ms)


def _ew(state: dict[str, Any], x: float, alpha: float, count_key: str = "count") -> None:
    """EW mean/variance step with ``1 / n`` weights while those are larger than ``alpha``."""
    a = max(alpha, 1.0 / (state[count_key] + 1))
    d = x - state["mean"]
    state["mean"] = state["mean"] + a * d
    state["var"] = (1.0 - a) * (state["var"] + a * d * d)
    state[count_key] += 1


class RefEwma:
    def __init__(self, tau_s: float = 6000.0, warmup: int = 30, z_scale: float = 3.0,
                 min_std: float = 1e-6) -> None:
        self.p: dict[str, Any] = dict(tau_s=tau_s, warmup=warmup, z_scale=z_scale, min_std=min_std)
        self.s: dict[int, dict[str, Any]] = defaultdict(lambda: {"mean": 0.0, "var": 0.0,
                                                                 "count": 0, "last_ts": 0})

    def score(self, slot: int, ts_ms: int, x: float) -> float:
        st, p = self.s[slot], self.p
        if st["count"] < p["warmup"]:
            return 0.0
        z = abs(x - st["mean"]) / (math.sqrt(st["var"]) + p["min_std"])
        return _squash(z, p["z_scale"])

    def update(self, slot: int, ts_ms: int, x: float, skip: bool = False) -> None:
        st = self.s[slot]
        if not skip:
            _ew(st, x, _weight(ts_ms - st["last_ts"], self.p["tau_s"]))
        st["last_ts"] = ts_ms


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


class RefRobustZ:
    def __init__(self, window: int = 31, z_scale: float = 3.0, min_std: float = 1e-6) -> None:
        self.window, self.z_scale, self.min_std = window, z_scale, min_std
        self.s: dict[int, deque[float]] = defaultdict(lambda: deque(maxlen=window))

    def score(self, slot: int, ts_ms: int, x: float) -> float:
        buf = list(self.s[slot])
        if len(buf) < self.window:
            return 0.0
        med = _median(buf)
        mad = _median([abs(v - med) for v in buf])
        return _squash(abs(x - med) / (MAD_TO_STD * mad + self.min_std), self.z_scale)

    def update(self, slot: int, ts_ms: int, x: float, skip: bool = False) -> None:
        if not skip:
            self.s[slot].append(float(np.float32(x)))


class RefSeasonal:
    def __init__(self, alpha: float = 0.1, warmup: int = 3, z_scale: float = 3.0,
                 min_std: float = 1e-3, timezone: str = "UTC") -> None:
        self.p: dict[str, Any] = dict(alpha=alpha, warmup=warmup, z_scale=z_scale, min_std=min_std)
        self.timezone = timezone
        self.ready = 1.0 - (1.0 - alpha) ** (warmup - 0.5)
        self.s: dict[tuple[int, int], dict[str, Any]] = defaultdict(
            lambda: {"mean": 0.0, "var": 0.0, "mass": 0.0})
        self.last_ts: dict[int, int] = defaultdict(int)

    def _cell(self, slot: int, ts_ms: int) -> dict[str, Any]:
        local = ts_ms + int(utc_offsets_ms(np.array([ts_ms]), self.timezone)[0])
        weekend = (local // 86_400_000 + 3) % 7 >= 5
        return self.s[(slot, 24 * weekend + (local // 3_600_000) % 24)]

    def score(self, slot: int, ts_ms: int, x: float) -> float:
        c, p = self._cell(slot, ts_ms), self.p
        if c["mass"] < self.ready:
            return 0.0
        z = abs(x - c["mean"]) / (math.sqrt(c["var"]) + p["min_std"])
        return _squash(z, p["z_scale"])

    def update(self, slot: int, ts_ms: int, x: float, skip: bool = False) -> None:
        dt = float(min(max(ts_ms - self.last_ts[slot], 0), 3_600_000))
        self.last_ts[slot] = ts_ms
        if skip:
            return
        c = self._cell(slot, ts_ms)
        weight = self.p["alpha"] * dt / 3_600_000
        mass = c["mass"] + weight * (1.0 - c["mass"])
        a = weight / mass if mass > 0.0 else 1.0
        d = x - c["mean"]
        c["mean"] = float(np.float32(c["mean"] + a * d))
        c["var"] = float(np.float32((1.0 - a) * (c["var"] + a * d * d)))
        c["mass"] = float(np.float32(mass))


class RefStep:
    def __init__(self, tau_s: float = 30_000.0, warmup: int = 30, z_scale: float = 3.0,
                 min_std: float = 1e-6) -> None:
        self.p: dict[str, Any] = dict(tau_s=tau_s, warmup=warmup, z_scale=z_scale, min_std=min_std)
        self.s: dict[int, dict[str, Any]] = defaultdict(
            lambda: {"last": 0.0, "mean": 0.0, "var": 0.0, "count": 0, "last_ts": 0})

    def score(self, slot: int, ts_ms: int, x: float) -> float:
        st, p = self.s[slot], self.p
        if st["count"] <= p["warmup"]:
            return 0.0
        z = abs(x - st["last"] - st["mean"]) / (math.sqrt(st["var"]) + p["min_std"])
        return _squash(z, p["z_scale"])

    def update(self, slot: int, ts_ms: int, x: float, skip: bool = False) -> None:
        st = self.s[slot]
        if st["count"] == 0:
            st["count"] = 1
        elif not skip:
            a = max(_weight(ts_ms - st["last_ts"], self.p["tau_s"]), 1.0 / st["count"])
            d = x - st["last"] - st["mean"]
            st["mean"] = st["mean"] + a * d
            st["var"] = (1.0 - a) * (st["var"] + a * d * d)
            st["count"] += 1
        st["last"] = x
        st["last_ts"] = ts_ms


class RefCusum:
    def __init__(self, tau_s: float = 30_000.0, k: float = 0.5, h: float = 5.0, warmup: int = 30,
                 min_std: float = 1e-6) -> None:
        self.p: dict[str, Any] = dict(tau_s=tau_s, k=k, h=h, warmup=warmup, min_std=min_std)
        self.s: dict[int, dict[str, Any]] = defaultdict(
            lambda: {"mean": 0.0, "var": 0.0, "count": 0, "up": 0.0, "down": 0.0, "last_ts": 0})

    def _sums(self, st: dict[str, Any], x: float) -> tuple[float, float]:
        p = self.p
        if st["count"] < p["warmup"]:
            return 0.0, 0.0
        z = (x - st["mean"]) / (math.sqrt(st["var"]) + p["min_std"])
        return max(0.0, st["up"] + z - p["k"]), max(0.0, st["down"] - z - p["k"])

    def score(self, slot: int, ts_ms: int, x: float) -> float:
        return _squash(max(self._sums(self.s[slot], x)), self.p["h"])

    def update(self, slot: int, ts_ms: int, x: float, skip: bool = False) -> None:
        st = self.s[slot]
        up, down = self._sums(st, x)
        signalled = max(up, down) >= self.p["h"]
        st["up"], st["down"] = (0.0, 0.0) if signalled else (up, down)
        if not skip:
            _ew(st, x, _weight(ts_ms - st["last_ts"], self.p["tau_s"]))
        st["last_ts"] = ts_ms


class RefLikelihood:
    def __init__(self, detectors: list[Any], short_tau_s: float = 2_700.0,
                 long_tau_s: float = 150_000.0, warmup: int = 200, min_std: float = 0.02,
                 decades: float = 3.0, confirm_at: float = 0.99, max_skip: int = 50,
                 refractory_s: float = 43_200.0, damp: float = 0.0,
                 range_tolerance: float | None = 0.02,
                 context: tuple[tuple[int, int], ...] = (), explained_below: float = 0.5) -> None:
        self.detectors = detectors
        self.context, self.explained_below = context, explained_below
        self.p: dict[str, Any] = dict(
            short_tau_s=short_tau_s, long_tau_s=long_tau_s, warmup=warmup, min_std=min_std,
            decades=decades, confirm_at=confirm_at, max_skip=max_skip,
            refractory_s=refractory_s, damp=damp, range_tolerance=range_tolerance)
        k = len(detectors)
        self.s: dict[int, dict[str, Any]] = defaultdict(
            lambda: {"recent": [0.0] * k, "mean": [0.0] * k, "var": [0.0] * k, "count": 0,
                     "skipped": 0, "last_ts": 0, "quiet_until": 0, "low": math.inf,
                     "high": -math.inf})

    def _evaluate(self, slot: int, ts_ms: int, x: float) -> tuple[float, list[float]]:
        st, p = self.s[slot], self.p
        top, recent = -math.inf, []
        w = _weight(ts_ms - st["last_ts"], p["short_tau_s"])
        raws = [d.score(slot, ts_ms, x) for d in self.detectors]
        # a reading its context speaks of (above 0) as usual is not the judged detector's news
        explained = {j for j, c in self.context if 0.0 < raws[c] < self.explained_below}
        for j, raw in enumerate(raws):
            prev = st["recent"][j]
            r = raw if st["count"] == 0 else prev + w * (raw - prev)
            if j not in explained:
                top = max(top, (r - st["mean"][j]) / (math.sqrt(st["var"][j]) + p["min_std"]))
            recent.append(r)
        # the largest z has the largest likelihood: the tail probability is monotone
        final = min(1.0, max(0.0, float(-log_ndtr(-top) / (p["decades"] * LN10))))
        if st["count"] < p["warmup"]:
            final = 0.0
        else:
            if p["range_tolerance"] is not None:
                margin = p["range_tolerance"] * (st["high"] - st["low"])
                if x > st["high"] + margin or x < st["low"] - margin:
                    final = 1.0
        if ts_ms < st["quiet_until"]:
            final = final * p["damp"]
        return final, recent

    def score(self, slot: int, ts_ms: int, x: float) -> float:
        return self._evaluate(slot, ts_ms, x)[0]

    def update(self, slot: int, ts_ms: int, x: float, skip: bool = False) -> None:
        st, p = self.s[slot], self.p
        final, recent = self._evaluate(slot, ts_ms, x)
        confirmed = final >= p["confirm_at"] or skip
        held = confirmed and st["skipped"] < p["max_skip"]
        for d in self.detectors:
            d.update(slot, ts_ms, x, held)
        st["recent"] = recent
        st["low"], st["high"] = min(st["low"], x), max(st["high"], x)
        st["skipped"] = st["skipped"] + 1 if held else 0
        if final >= p["confirm_at"]:
            st["quiet_until"] = ts_ms + round(p["refractory_s"] * 1000)
        if not held:
            a = max(_weight(ts_ms - st["last_ts"], p["long_tau_s"]), 1.0 / (st["count"] + 1))
            for j, r in enumerate(recent):
                d = r - st["mean"][j]
                st["mean"][j] = st["mean"][j] + a * d
                st["var"][j] = (1.0 - a) * (st["var"][j] + a * d * d)
            st["count"] += 1
        st["last_ts"] = ts_ms
