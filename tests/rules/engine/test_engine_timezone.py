"""The engine gives detectors that learn by local time the city's time zone."""

from __future__ import annotations

from rules.detectors import AnomalyLikelihood, SeasonalBaseline
from rules.engine.engine import Engine
from rules.language.loader import load_rules
from tests.rules.conftest import small_registry

RULES = """
rules:
- {id: odd-level, category: device, match: {metric: level_m},
   when: anomaly(seasonal) > 0.99, clear_when: anomaly(seasonal) < 0.9, severity: info}
- {id: odd-any, category: device, match: {metric: level_m},
   when: anomaly(combined) > 0.99, severity: info}
"""


def test_seasonal_baselines_learn_the_local_hours_of_the_city() -> None:
    engine = Engine(load_rules(RULES), small_registry(), timezone="Europe/Berlin")
    seasonal, combined = engine.detectors["seasonal"], engine.detectors["combined"]
    assert isinstance(seasonal, SeasonalBaseline) and seasonal.timezone == "Europe/Berlin"
    assert isinstance(combined, AnomalyLikelihood)
    bases = [d for d in combined.detectors if isinstance(d, SeasonalBaseline)]
    assert [d.timezone for d in bases] == ["Europe/Berlin"]
    rebuilt = engine.rebuild(rules=load_rules(RULES))
    assert rebuilt.options["timezone"] == "Europe/Berlin"


def test_factories_without_a_time_zone_are_built_as_they_are() -> None:
    factories = {"seasonal": SeasonalBaseline, "combined": lambda: AnomalyLikelihood()}
    engine = Engine(load_rules(RULES), small_registry(), timezone="Europe/Berlin",
                    detectors=factories)
    assert engine.detectors["seasonal"].timezone == "Europe/Berlin"  # type: ignore[attr-defined]
    assert engine.detectors["combined"].timezone == "UTC"  # type: ignore[attr-defined]
