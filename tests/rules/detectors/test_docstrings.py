"""The runnable examples in the detectors' docstrings hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["base", "cusum", "ewma", "likelihood", "robust_z", "seasonal", "step"]


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module: str) -> None:
    mod = importlib.import_module(f"rules.detectors.{module}")
    result = doctest.testmod(mod)
    assert result.failed == 0
    if module not in {"base"}:
        assert result.attempted > 0
