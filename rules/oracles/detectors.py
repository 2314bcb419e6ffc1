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

from rules.detectors.likelihood import LOG_TAIL_FLOOR
from rules.detectors.robust_z import MAD_TO_STD


def _squash(z: float, z_scale: float) -> float:
    return z / (z + z_scale)


def _ew(state: dict[str, Any], x: float, alpha: float, count_key: str = "count") -> None:
    """EW mean/variance step with ``1 / n`` weights while those are larger than ``alpha``."""
    a = max(alpha, 1.0 / (state[count_key] + 1))
    d = x - state["mean"]
    state["mean"] = state["mean"] + a * d
    state["var"] = (1.0 - a) * (state["var"] + a * d * d)
    state[count_key] += 1


class RefEwma:
    def __init__(self, alpha: float = 0.05, warmup: int = 30, z_scale: float = 3.0,
                 min_std: float = 1e-6) -> None:
        self.p: dict[str, Any] = dict(alpha=alpha, warmup=warmup, z_scale=z_scale, min_std=min_std)
        self.s: dict[int, dict[str, Any]] = defaultdict(lambda: {"mean": 0.0, "var": 0.0,
                                                                 "count": 0})

    def score(self, slot: int, ts_ms: int, x: float) -> float:
        st, p = self.s[slot], self.p
        if st["count"] < p["warmup"]:
            return 0.0
        z = abs(x - st["mean"]) / (math.sqrt(st["var"]) + p["min_std"])
        return _squash(z, p["z_scale"])

    def update(self, slot: int, ts_ms: int, x: float, skip: bool = False) -> None:
        if not skip:
            _ew(self.s[slot], x, self.p["alpha"])


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
                 min_std: float = 1e-3, utc_offset_ms: int = 0) -> None:
        self.p: dict[str, Any] = dict(alpha=alpha, warmup=warmup, z_scale=z_scale, min_std=min_std)
        self.offset = utc_offset_ms
        self.s: dict[tuple[int, int], dict[str, Any]] = defaultdict(
            lambda: {"mean": 0.0, "var": 0.0, "count": 0})

    def _cell(self, slot: int, ts_ms: int) -> dict[str, Any]:
        local = ts_ms + self.offset
        weekend = (local // 86_400_000 + 3) % 7 >= 5
        return self.s[(slot, 24 * weekend + (local // 3_600_000) % 24)]

    def score(self, slot: int, ts_ms: int, x: float) -> float:
        c, p = self._cell(slot, ts_ms), self.p
        if c["count"] < p["warmup"]:
            return 0.0
        z = abs(x - c["mean"]) / (math.sqrt(c["var"]) + p["min_std"])
        return _squash(z, p["z_scale"])

    def update(self, slot: int, ts_ms: int, x: float, skip: bool = False) -> None:
        if skip:
            return
        c = self._cell(slot, ts_ms)
        _ew(c, x, self.p["alpha"])
        c["mean"] = float(np.float32(c["mean"]))
        c["var"] = float(np.float32(c["var"]))
        c["count"] = min(c["count"], 65535)


class RefStep:
    def __init__(self, alpha: float = 0.01, warmup: int = 30, z_scale: float = 3.0,
                 min_std: float = 1e-6) -> None:
        self.p: dict[str, Any] = dict(alpha=alpha, warmup=warmup, z_scale=z_scale, min_std=min_std)
        self.s: dict[int, dict[str, Any]] = defaultdict(
            lambda: {"last": 0.0, "mean": 0.0, "var": 0.0, "count": 0})

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
            a = max(self.p["alpha"], 1.0 / st["count"])
            d = x - st["last"] - st["mean"]
            st["mean"] = st["mean"] + a * d
            st["var"] = (1.0 - a) * (st["var"] + a * d * d)
            st["count"] += 1
        st["last"] = x


class RefCusum:
    def __init__(self, alpha: float = 0.01, k: float = 0.5, h: float = 5.0, warmup: int = 30,
                 min_std: float = 1e-6) -> None:
        self.p: dict[str, Any] = dict(alpha=alpha, k=k, h=h, warmup=warmup, min_std=min_std)
        self.s: dict[int, dict[str, Any]] = defaultdict(
            lambda: {"mean": 0.0, "var": 0.0, "count": 0, "up": 0.0, "down": 0.0})

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
            _ew(st, x, self.p["alpha"])


class RefLikelihood:
    def __init__(self, detectors: list[Any], short_alpha: float = 0.1, long_alpha: float = 0.002,
                 warmup: int = 200, min_std: float = 0.02, confirm_at: float = 0.3,
                 max_skip: int = 50, refractory: int = 30, damp: float = 0.0,
                 range_tolerance: float | None = 0.02) -> None:
        self.detectors = detectors
        self.p: dict[str, Any] = dict(short_alpha=short_alpha, long_alpha=long_alpha, warmup=warmup,
                      min_std=min_std, confirm_at=confirm_at, max_skip=max_skip,
                      refractory=refractory, damp=damp, range_tolerance=range_tolerance)
        k = len(detectors)
        self.s: dict[int, dict[str, Any]] = defaultdict(
            lambda: {"recent": [0.0] * k, "mean": [0.0] * k, "var": [0.0] * k, "count": 0,
                     "skipped": 0, "quiet": 0, "low": math.inf, "high": -math.inf})

    def _evaluate(self, slot: int, ts_ms: int, x: float) -> tuple[float, list[float]]:
        st, p = self.s[slot], self.p
        top, recent = -math.inf, []
        for j, d in enumerate(self.detectors):
            raw, prev = d.score(slot, ts_ms, x), st["recent"][j]
            r = raw if st["count"] == 0 else prev + p["short_alpha"] * (raw - prev)
            top = max(top, (r - st["mean"][j]) / (math.sqrt(st["var"][j]) + p["min_std"]))
            recent.append(r)
        # the largest z has the largest likelihood: the tail probability is monotone
        final = min(1.0, max(0.0, float(-log_ndtr(-top) / LOG_TAIL_FLOOR)))
        if st["count"] < p["warmup"]:
            final = 0.0
        else:
            if p["range_tolerance"] is not None:
                margin = p["range_tolerance"] * (st["high"] - st["low"])
                if x > st["high"] + margin or x < st["low"] - margin:
                    final = 1.0
        if st["quiet"] > 0:
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
        st["quiet"] = p["refractory"] if final >= p["confirm_at"] else max(st["quiet"] - 1, 0)
        if not held:
            a = max(p["long_alpha"], 1.0 / (st["count"] + 1))
            for j, r in enumerate(recent):
                d = r - st["mean"][j]
                st["mean"][j] = st["mean"][j] + a * d
                st["var"][j] = (1.0 - a) * (st["var"][j] + a * d * d)
            st["count"] += 1
