"""Vectorized streaming anomaly detectors (score before learning, per-slot state arrays).

``DETECTORS`` maps the names rules use in ``anomaly(<name>)`` to detector classes; every class
builds with defaults.
"""

from __future__ import annotations

from collections.abc import Callable

from rules.detectors.base import Detector, SlotDetector, score_and_update
from rules.detectors.cusum import Cusum
from rules.detectors.ewma import EwmaChart
from rules.detectors.likelihood import AnomalyLikelihood
from rules.detectors.robust_z import RobustZ
from rules.detectors.seasonal import SeasonalBaseline
from rules.detectors.step import StepChart

DETECTORS: dict[str, Callable[[], Detector]] = {
    "robust_z": RobustZ,
    "ewma": EwmaChart,
    "seasonal": SeasonalBaseline,
    "cusum": Cusum,
    "step": StepChart,
    "combined": AnomalyLikelihood,
}

__all__ = [
    "DETECTORS",
    "AnomalyLikelihood",
    "Cusum",
    "Detector",
    "EwmaChart",
    "RobustZ",
    "SeasonalBaseline",
    "SlotDetector",
    "StepChart",
    "score_and_update",
]
