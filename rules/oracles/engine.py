"""Test oracle: the engine's semantics as a plain scalar loop, one reading at a time.

A slow per-reading reference implementation, used by the property tests to check the vectorized
engine (`rules.engine.engine.Engine`) and by the engine benchmark as a baseline; never used in
production. It shares only the rule model, the expression tree and `rules.engine.plan` (which
series a rule matches, ring capacities, neighbouring cells) with the engine, and evaluates
everything one reading, one rule and one subject at a time with Python floats.
"""

from __future__ import annotations

import math
import operator
from collections import deque
from collections.abc import Mapping, Sequence
from zoneinfo import ZoneInfo

import numpy as np

from devices.batch import ReadingBatch
from devices.registry import Registry
from rules.detection import Detection, DetectionState, Severity
from rules.engine.local_time import local_hour_of
from rules.engine.plan import (
    SlotTable,
    area_of,
    detector_names,
    matched_slots,
    neighbour_cells,
    ring_capacity,
    subject_of,
)
from rules.engine.scoring import CITY_TIMEZONE, build_detectors
from rules.language import ast
from rules.language.model import Rule

INACTIVE, PENDING, FIRING = "inactive", "pending", "firing"
NEVER = -(2**63)  # the last reading time of a series that has not reported


class Reference:
    """Same constructor and calls as `rules.engine.engine.Engine`, one reading at a time."""

    def __init__(self, rules: Sequence[Rule], registry: Registry, *,
                 detectors: Mapping | None = None,
                 attributes: Mapping[str, Mapping[str, float]] | None = None,
                 timezone: str = CITY_TIMEZONE) -> None:
        self.rules = [r for r in rules if r.enabled]
        self.table = SlotTable.of(registry)
        self.attributes = attributes or {}
        self.zone = ZoneInfo(timezone)
        self.members = {r.id: [int(s) for s in matched_slots(r, self.table)] for r in self.rules}
        self.member_sets = {rule_id: set(slots) for rule_id, slots in self.members.items()}
        self.caps = {r.id: ring_capacity(r, self.table, matched_slots(r, self.table))
                     for r in self.rules}
        self.detectors = build_detectors(detector_names(self.rules), detectors, timezone)
        for d in self.detectors.values():
            d.grow(len(self.table))
        self.scores: dict[str, dict[int, float]] = {n: {} for n in self.detectors}
        self.last_ts: dict[int, int] = {}
        self.last_value: dict[int, float] = {}
        self.run_start: dict[int, int] = {}
        self.fault_ts: dict[int, int] = {}
        self.rings: dict[tuple[str, int], deque] = {}
        self.state: dict[tuple[str, object], list] = {}
        self.late = self.duplicate = 0

    def evaluate(self, batch: ReadingBatch, now_ms: int,
                 faults: ReadingBatch | None = None) -> list[Detection]:
        out: list[tuple] = []
        for i in sorted(range(len(batch)), key=lambda i: (int(batch.ts_ms[i]), i)):
            self._reading(int(batch.slot[i]), int(batch.ts_ms[i]), float(batch.value[i]), out)
        newest: dict[int, tuple[int, float]] = {}
        for i in range(len(faults) if faults is not None else 0):
            assert faults is not None
            slot, ts = int(faults.slot[i]), int(faults.ts_ms[i])
            if 0 <= slot < len(self.table) and (slot not in newest or ts >= newest[slot][0]):
                newest[slot] = (ts, float(faults.value[i]))
        for slot, (ts, value) in sorted(newest.items()):
            self._fault(slot, ts, value, out)
        return self._finish(out, now_ms)

    def _fault(self, slot: int, ts: int, value: float, out: list) -> None:
        self.fault_ts[slot] = max(ts, self.fault_ts.get(slot, ts))
        for rule in self._series_rules():
            if rule.judges_faults and slot in self.member_sets[rule.id]:
                self._judge(rule, slot, slot, ts, value, self.last_ts.get(slot, NEVER), {}, out)

    def tick(self, now_ms: int) -> list[Detection]:
        return self._finish([], now_ms)

    def _reading(self, slot: int, ts: int, value: float, out: list) -> None:
        if not 0 <= slot < len(self.table):
            return
        last = self.last_ts.get(slot)
        if last is not None and ts <= last:
            self.late += ts < last
            self.duplicate += ts == last
            return
        if last is None or value != self.last_value[slot]:
            self.run_start[slot] = ts
        self.last_ts[slot], self.last_value[slot] = ts, value
        one = (np.array([slot]), np.array([ts]), np.array([value]))
        for name, det in self.detectors.items():
            if any(slot in self.member_sets[r.id] and _uses(r, name) for r in self.rules):
                self.scores[name][slot] = float(det.score(*one)[0])
        for rule in self._series_rules():
            if slot in self.member_sets[rule.id]:
                ring = self.rings.setdefault((rule.id, slot), deque(maxlen=self.caps[rule.id] or 1))
                ring.append((ts, value))
                self._judge(rule, slot, slot, ts, value, ts, {}, out)
        for name, det in self.detectors.items():
            users = [r for r in self.rules if slot in self.member_sets[r.id] and _uses(r, name)]
            if users:
                skip = any(self._st(r.id, slot)[0] == FIRING for r in users)
                det.update(*one, np.array([skip]))

    def _series_rules(self) -> list[Rule]:
        return [r for r in self.rules if r.spatial_scope is None]

    def _st(self, rule_id: str, subject: object) -> list:
        return self.state.setdefault((rule_id, subject), [INACTIVE, 0, 0])

    def _judge(self, rule: Rule, subject: object, slot: int | None, t: int, value: float,
               anchor: int, counts: dict, out: list) -> None:
        env = (slot, t, value, anchor, counts, rule.id)
        cond = bool(self._eval(rule.when_ast, env))
        clear = bool(self._eval(rule.clear_ast, env)) if rule.clear_ast else not cond
        severity = int(self._eval(rule.severity_ast, env))
        st = self._st(rule.id, subject)
        state, since, prev = st
        change = None
        if state == INACTIVE and cond:
            change = st[0] = FIRING if rule.for_ms == 0 else PENDING
            st[1] = t
        elif state == PENDING and cond and t - since >= rule.for_ms:
            change = st[0] = FIRING
        elif (state == PENDING and not cond) or (state == FIRING and clear):
            change, st[0] = "cleared", INACTIVE
        elif state == FIRING and severity != prev:
            change = FIRING
        if st[0] != INACTIVE:
            st[2] = severity
        if change is not None:
            out.append((t, rule, subject, change, st[2], value))

    def _tick(self, now: int, out: list) -> None:
        for rule in self._series_rules():
            for slot in self.members[rule.id]:
                if slot not in self.last_ts:
                    continue
                if rule.time_dependent:
                    self._judge(rule, slot, slot, now, self.last_value[slot], self.last_ts[slot],
                                {}, out)
                elif rule.for_ms > 0:
                    st = self._st(rule.id, slot)
                    if st[0] == PENDING and now - st[1] >= rule.for_ms:
                        st[0] = FIRING
                        out.append((now, rule, slot, FIRING, st[2], self.last_value[slot]))
        for rule in self.rules:
            if rule.spatial_scope is not None:
                self._judge_areas(rule, now, out)

    def _judge_areas(self, rule: Rule, now: int, out: list) -> None:
        scope = rule.spatial_scope
        home = "district" if scope == "district" else "grid"
        own = set(self.members[rule.id])
        keys = [(n.scope, n.rule_id) for n in ast.count_ins(rule.nodes())]
        counted = {k: [s for s in self.members[k[1]] if s in own] for k in keys}
        areas = sorted({area_of(home, self.table, s) for ss in counted.values() for s in ss})
        for area in areas:
            near = set(neighbour_cells(area)) if scope == "neighbours" else {area}
            counts = {k: float(sum(1 for s in ss if area_of(home, self.table, s) in near
                                   and self._st(k[1], s)[0] == FIRING))
                      for k, ss in counted.items()}
            self._judge(rule, area, None, now, counts[keys[0]], now, counts, out)

    def _finish(self, out: list, now: int) -> list[Detection]:
        self._tick(now, out)
        index = {r.id: i for i, r in enumerate(self.rules)}
        out.sort(key=lambda e: (e[0], index[e[1].id], self._subject_key(e[1], e[2])))
        return [self._detection(*e) for e in out]

    def _subject_key(self, rule: Rule, subject: object) -> object:
        return subject if isinstance(subject, int) else str(subject)

    def _detection(self, t: int, rule: Rule, subject: int | str, change: str, sev: int,
                   value: float) -> Detection:
        """`subject` is a slot, or the district or grid cell of a spatial rule."""
        device_id: str | None = None
        metric: str | None = None
        grid: str | None
        if isinstance(subject, int):
            tb = self.table
            device_id, metric = str(tb.device_id[subject]), str(tb.metric[subject])
            name, district, grid = device_id, str(tb.district[subject]), str(tb.grid[subject])
        elif rule.spatial_scope == "district":
            name, district, grid = subject_of("district", subject), subject, None
        else:
            slot = next(s for s in range(len(self.table)) if self.table.grid[s] == subject)
            name, grid = subject_of("grid", subject), subject
            district = str(self.table.district[slot])
        return Detection(rule.id, rule.category, name, DetectionState(change), Severity(sev), t,
                         float(value), device_id=device_id, metric=metric, district=district,
                         grid=grid)

    def _eval(self, node: ast.Node, env: tuple) -> float | bool | int:
        slot, t, value, anchor, counts, rule_id = env
        match node:
            case ast.Num(v):
                return v
            case ast.Sev(level):
                return int(level)
            case ast.Value():
                return value
            case ast.Hour():
                return local_hour_of(t, self.zone)
            case ast.Attr(name, default):
                found = float(self.attributes.get(str(self.table.device_id[slot]), {})
                              .get(name, math.nan))
                return default if math.isnan(found) and default is not None else found
            case ast.Anomaly(name):
                return self.scores[name].get(slot, 0.0)
            case ast.Stale(d):
                return t - max(self.last_ts.get(slot, NEVER), self.fault_ts.get(slot, NEVER)) >= d
            case ast.OutOfRange(hold):
                fault = self.fault_ts.get(slot)
                return fault is not None and (fault > anchor or fault > t - hold)
            case ast.Stuck(w):
                return anchor - self.run_start[slot] >= w
            case ast.CountIn(scope, rid):
                return counts[(scope, rid)]
            case ast.Window(fn, w):
                ring = self.rings[(rule_id, slot)]
                inside = [(ts, v) for ts, v in reversed(ring) if ts > anchor - w]
                return _window(fn, inside, w)
            case ast.Unary("-", operand):
                return -self._eval(operand, env)
            case ast.Unary(_, operand):
                return not self._eval(operand, env)
            case ast.IfElse(cond, then, other):
                return self._eval(then if self._eval(cond, env) else other, env)
            case ast.Binary(op, left, right):
                return _binary(op, self._eval(left, env), self._eval(right, env))
        raise TypeError(node)


def _uses(rule: Rule, detector: str) -> bool:
    return any(isinstance(n, ast.Anomaly) and n.detector == detector for n in rule.nodes())


def _div(a: float, b: float) -> float:
    if b != 0:
        return a / b
    if a == 0 or math.isnan(a):
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


_BINARY = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": _div,
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
    "and": lambda a, b: bool(a) and bool(b), "or": lambda a, b: bool(a) or bool(b),
}


def _binary(op: str, a: float, b: float) -> float | bool:
    return _BINARY[op](a, b)


def _sum(xs: list[float]) -> float:
    total = xs[0]
    for x in xs[1:]:
        total += x
    return total


def _rate(inside: list[tuple[int, float]], window_ms: int) -> float:
    """Least-squares slope per second, newest reading first in every sum (as the engine adds)."""
    t_new, t_old = inside[0][0], inside[-1][0]
    if len(inside) < ast.RATE_MIN_READINGS or t_new - t_old < ast.RATE_MIN_SPAN * window_ms:
        return math.nan
    times = [(t - t_new) / 1000.0 for t, _ in inside]
    values = [v for _, v in inside]
    t_mean, v_mean = _sum(times) / len(inside), _sum(values) / len(inside)
    dt = [t - t_mean for t in times]
    dv = [v - v_mean for v in values]
    return _sum([a * b for a, b in zip(dt, dv, strict=True)]) / _sum([a * a for a in dt])


def _window(fn: str, inside: list[tuple[int, float]], window_ms: int) -> float:
    values = [v for _, v in inside]
    n = len(values)
    v0, v_old = values[0], values[-1]
    match fn:
        case "mean":
            return _sum(values) / n
        case "min":
            return min(values)
        case "max":
            return max(values)
        case "delta":
            return v0 - v_old
        case "rate":
            return _rate(inside, window_ms)
    mean = _sum(values) / n
    std = math.sqrt(_sum([(v - mean) * (v - mean) for v in values]) / n)
    return (v0 - mean) / std if std > 0 else 0.0
