"""Judging runs off the event loop: while the engine is busy with a batch, the API answers.

The batch is held inside the engine (a detector that waits for the test to let it go), so
"while" is a condition, not a duration.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest

from devices.batch import ReadingBatch
from devices.catalogue import load_catalogue
from devices.registry import Registry
from rules.detection import Detection
from rules.detectors import DETECTORS
from tests.api.conftest import DEVICES, T0_MS
from tests.support.polling import WAIT_S, eventually
from urbanwatch.judging import Judge

RULES = """
- {id: held, category: safety, match: {device_type: gas}, when: anomaly(gate) > 0.5}
"""


class Gate:
    """A detector whose scoring waits until the test opens the gate (then scores 1)."""

    def __init__(self) -> None:
        self.n_slots = 0
        self.entered, self.opened = threading.Event(), threading.Event()

    def grow(self, n_slots: int) -> None:
        self.n_slots = max(self.n_slots, n_slots)

    def score(self, slots: np.ndarray, ts_ms: np.ndarray, values: np.ndarray) -> np.ndarray:
        self.entered.set()
        if not self.opened.wait(WAIT_S):  # judged on the loop: the test could not open it
            raise TimeoutError("the gate was never opened")
        return np.ones(len(slots))

    def update(self, slots: np.ndarray, ts_ms: np.ndarray, values: np.ndarray,
               skip: np.ndarray | None = None) -> None:
        pass


async def test_the_api_answers_while_a_batch_is_judged(
    served: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    gate = Gate()
    monkeypatch.setitem(DETECTORS, "gate", lambda: gate)
    path = tmp_path / "held.yaml"
    path.write_text(RULES)
    registry = Registry.build(load_catalogue(), DEVICES)
    seen: list[Detection] = []

    async def sink(found: list[Detection], now_ms: int) -> None:
        seen.extend(found)

    judge = Judge(lambda: registry, sink, rules_path=path)
    slot = registry.slot("gas-0001", "lel_pct")
    judging = asyncio.create_task(
        judge.on_batch(ReadingBatch.from_columns([slot], [T0_MS], [5.0]), T0_MS))
    try:
        await eventually(gate.entered.is_set, "the engine to be judging the batch")
        async with httpx.AsyncClient(base_url=served, timeout=WAIT_S) as api:
            assert (await api.get("/healthz")).status_code == 200
        assert not judging.done() and seen == []
    finally:
        gate.opened.set()
        await judging
        judge.close()
    assert [(d.rule_id, d.device_id) for d in seen] == [("held", "gas-0001")]
