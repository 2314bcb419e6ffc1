"""The mute stage: hold back transitions whose alert is silenced or inhibited.

Runs after `lifecycle` and before `grouping`. Muted transitions stay in the output (they are
recorded) with `suppressed_by` saying why; flapping already set by `lifecycle` wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from alerts.decisions.inhibit import Inhibitor, InhibitPolicy
from alerts.decisions.silences import Silence, muting_silence
from alerts.model import Alert, Transition


def mute(
    transitions: Sequence[Transition],
    alerts: Iterable[Alert],
    silences: Sequence[Silence],
    policy: InhibitPolicy,
    now_ms: int,
    device_types: Mapping[str, str],
) -> tuple[Transition, ...]:
    """Mark the notifying transitions that must not be dispatched.

    Args:
        transitions: lifecycle output.
        alerts: every alert of the book after the change (the inhibition sources).
        silences: the silences in force (expired ones are ignored).
        policy: which rules mean "offline", and the device → gateway map.
        now_ms: the current time, for the silence windows.
        device_types: device id → device type, for device-type matchers.

    Returns:
        The same transitions, in order, with `suppressed_by` set where muted.
    """
    inhibitor = Inhibitor.build(alerts, policy)
    return tuple(_mute_one(t, inhibitor, silences, now_ms, device_types) for t in transitions)


def _mute_one(
    t: Transition,
    inhibitor: Inhibitor,
    silences: Sequence[Silence],
    now_ms: int,
    device_types: Mapping[str, str],
) -> Transition:
    if not t.notify or t.suppressed_by is not None:
        return t
    silence = muting_silence(t.alert, silences, now_ms, device_types)
    if silence is not None:
        return replace(t, suppressed_by=f"silence:{silence.id}")
    source = inhibitor.inhibited_by(t.alert)
    if source is not None:
        return replace(t, suppressed_by=f"inhibit:{source.id}")
    return t
