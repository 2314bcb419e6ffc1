"""Shared fixtures for the rule-engine tests: a small registry of gauges in neighbouring cells."""

from __future__ import annotations

import pytest

from devices.catalogue import load_catalogue
from devices.registry import Device, Registry


def small_registry() -> Registry:
    """Six gauges in cells g-0-0, g-0-1, g-1-1, g-5-5 of two districts, plus an AQ station."""
    cells = ["g-0-0", "g-0-0", "g-0-1", "g-1-1", "g-5-5", "g-5-5"]
    devices = [
        Device(f"wl-{i}", "water_level", "north" if i < 4 else "south", 0.0, 0.0, grid=cell)
        for i, cell in enumerate(cells)
    ]
    devices.append(Device("aq-0", "air_quality", "north", 0.0, 0.0, grid="g-0-0"))
    return Registry.build(load_catalogue(), devices)


@pytest.fixture
def registry() -> Registry:
    return small_registry()
