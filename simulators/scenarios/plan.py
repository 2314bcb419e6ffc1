"""From `--scenario` specs to scenarios, and from scenarios to the run's ground truth.

Event kinds: flood, gas_leak, pollution, traffic_accident, fire, structural; fault kinds:
see `simulators.scenarios.faults`. ``mix[:count=N,seed=S]`` stands for every event and
fault kind N times (default 2) at random places and times of the run, no two acting on one
device at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np

from simulators.city import City
from simulators.holidays import holidays_between
from simulators.scenarios import faults, fire, flood, gas_leak, pollution, structural
from simulators.scenarios import traffic_accident as traffic
from simulators.scenarios.base import Params, Run, Scenario, params, parse_spec
from simulators.scenarios.frame import Frame
from simulators.scenarios.truth import EventTruth, FaultTruth, Truth

Builder = Callable[[Run, Params, str], Scenario]
EVENTS: dict[str, tuple[Builder, int]] = {  # kind -> (builder, default duration ms)
    "flood": (flood.build, flood.DEFAULT_DURATION_MS),
    "gas_leak": (gas_leak.build, gas_leak.DEFAULT_DURATION_MS),
    "pollution": (pollution.build, pollution.DEFAULT_DURATION_MS),
    "traffic_accident": (traffic.build, traffic.DEFAULT_DURATION_MS),
    "fire": (fire.build, fire.DEFAULT_DURATION_MS),
    "structural": (structural.build, structural.DEFAULT_DURATION_MS),
}
FAULTS = faults.KINDS
MIX = "mix"
MIX_DRAWS = 50  # draws of a mix's scenario looking for devices no other one is acting on
MIX_APART_MS = 3_600_000  # after a scenario ends its devices stay taken this long (a skewed
# clock's late readings, a recovering sensor)


def build_scenarios(run: Run, specs: Sequence[str]) -> list[Scenario]:
    """The scenarios `specs` ask for, in order; ValueError naming the bad spec."""
    out: list[Scenario] = []
    for spec in specs:
        try:
            name, raw = parse_spec(spec)
            if name == MIX:
                out.extend(_mix(run, raw, len(out)))
            else:
                out.append(_one(run, name, raw, len(out)))
        except ValueError as exc:
            raise ValueError(f"--scenario {spec!r}: {exc}") from exc
    return out


def _one(run: Run, name: str, raw: dict[str, str], index: int) -> Scenario:
    if name in EVENTS:
        builder, default_ms = EVENTS[name]
        return builder(run, params(run, raw, default_ms, index), f"e{index + 1}-{name}")
    if name in FAULTS:
        p = params(run, raw, faults.DEFAULTS_MS[name], index)
        return faults.build(name, run, p, f"f{index + 1}-{name}")
    known = ", ".join([*EVENTS, *FAULTS, MIX])
    raise ValueError(f"unknown scenario {name!r}; known: {known}")


def _mix(run: Run, raw: dict[str, str], first: int) -> list[Scenario]:
    unknown = set(raw) - {"count", "seed"}
    if unknown:
        raise ValueError(f"mix takes count and seed, not {sorted(unknown)}")
    count = int(raw.get("count", 2))
    seed = int(raw.get("seed", run.seed))
    out: list[Scenario] = []
    for _ in range(count):
        for name in (*EVENTS, *FAULTS):
            index = first + len(out)
            out.append(_apart(run, name, seed * 10_000 + index, index, out))
    return out


def _apart(run: Run, name: str, seed: int, index: int, placed: list[Scenario]) -> Scenario:
    """The `index`-th scenario of a mix, drawn again (with another seed) while it would act on
    a device an earlier one acts on at about the same time: a spike on a stuck sensor, or a
    gas leak at a detector that has dropped out, would hide what the truth says of either."""
    best: tuple[tuple[int, int], Scenario] | None = None
    for attempt in range(MIX_DRAWS):
        scenario = _one(run, name, {"seed": str(seed + attempt * 1_000_000_007)}, index)
        hit = [other.truth for other in placed if _clash(scenario.truth, other.truth)]
        if not hit:
            return scenario
        # a crowded run: the draw overlapping the fewest, above all the fewest of its own kind
        # (two pollution episodes over one district at once are one episode to the city)
        cost = (sum(t.kind == scenario.truth.kind for t in hit), len(hit))
        if best is None or cost < best[0]:
            best = (cost, scenario)
    assert best is not None
    return best[1]


def _clash(a: EventTruth | FaultTruth, b: EventTruth | FaultTruth) -> bool:
    def span(t: EventTruth | FaultTruth) -> tuple[int, int]:
        return (t.onset_ms if isinstance(t, EventTruth) else t.start_ms), t.end_ms + MIX_APART_MS

    (a0, a1), (b0, b1) = span(a), span(b)
    return a0 < b1 and b0 < a1 and not set(a.devices).isdisjoint(b.devices)


def apply_all(city: City, scenarios: Sequence[Scenario], frame: Frame) -> None:
    """Events first, kept inside each metric's valid range (a strong one saturates the
    sensor); then faults, which may send anything."""
    for scenario in scenarios:
        if isinstance(scenario.truth, EventTruth):
            scenario.apply(city, frame)
    for type_name, spec in city.catalogue.items():
        rows = city.type_index[frame.dev] == city.type_names.index(type_name)
        for name, metric in spec.metrics.items():
            column = frame.values[name]
            column[rows] = np.clip(column[rows], metric.min, metric.max)
    for scenario in scenarios:
        if isinstance(scenario.truth, FaultTruth):
            scenario.apply(city, frame)


def truth(run: Run, scenarios: Sequence[Scenario]) -> Truth:
    offset = timedelta(seconds=run.city.utc_offset_s)
    first = (datetime.fromtimestamp(run.start_ms / 1000, UTC) + offset).date()
    last = (datetime.fromtimestamp(run.end_ms / 1000, UTC) + offset).date()
    return Truth(
        seed=run.seed, devices=len(run.city.devices), start_ms=run.start_ms, end_ms=run.end_ms,
        events=tuple(s.truth for s in scenarios if isinstance(s.truth, EventTruth)),
        faults=tuple(s.truth for s in scenarios if isinstance(s.truth, FaultTruth)),
        holidays=tuple(d.isoformat() for d in holidays_between(first, last, run.city.holidays)),
    )
