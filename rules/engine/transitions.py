"""The per-(rule, subject) state machine, vectorized over the subjects evaluated together.

inactive --when--> pending (``for`` > 0) or firing; pending --when held for ``for``--> firing;
pending --not when--> inactive (reported as cleared); firing --clear--> inactive (cleared),
where clear is ``clear_when`` if the rule has one (hysteresis) and ``not when`` otherwise;
firing with a new severity is reported as firing again. At most one change per evaluation.
"""

from __future__ import annotations

import numpy as np

from rules.engine.state import CLEARED, FIRING, INACTIVE, PENDING, RuleState

NONE = -1


def step(
    rs: RuleState,
    rows: np.ndarray,
    cond: np.ndarray,
    clear: np.ndarray,
    severity: np.ndarray,
    t_ms: np.ndarray,
    for_ms: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Advance ``rows`` of ``rs``; return (what each row reports or NONE, severity reported)."""
    state, since, prev = rs.state[rows], rs.since_ms[rows], rs.severity[rows]
    out = np.full(len(rows), NONE, dtype=np.int8)
    start = (state == INACTIVE) & cond
    pending = state == PENDING
    ripe = pending & cond & (t_ms - since >= for_ms)
    dropped = pending & ~cond
    firing = state == FIRING
    cleared = firing & clear
    escalated = firing & ~clear & (severity != prev)
    out[start] = FIRING if for_ms == 0 else PENDING
    out[ripe | escalated] = FIRING
    out[dropped | cleared] = CLEARED
    new_state = state.copy()
    new_state[start] = FIRING if for_ms == 0 else PENDING
    new_state[ripe] = FIRING
    new_state[dropped | cleared] = INACTIVE
    rs.state[rows] = new_state
    rs.since_ms[rows] = np.where(start, t_ms, since)
    live = new_state != INACTIVE
    rs.severity[rows] = np.where(live, severity, prev)
    return out, np.where(live, severity, prev).astype(np.int8)
