"""Announcement: a muted alert that still fires is announced once nothing mutes it any more.

Runs right after the mute stage. A silence or an inhibition only hides a firing alert: each
alert carries `Alert.notified`, set when one of its raising transitions got through the mute
stage and cleared again when the alert reopens. Any firing alert that is not notified, not
flapping (settling announces those), and that no silence or inhibition mutes at `now_ms` — its
silence ended or was removed, its offline device came back, the red alert over it cleared — gets
an ``unmuted`` transition, which grouping treats like a fresh raise (Alertmanager's behaviour).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from alerts.decisions.inhibit import Inhibitor, InhibitPolicy
from alerts.decisions.lifecycle import AlertBook
from alerts.decisions.silences import Silence, muting_silence
from alerts.model import Alert, AlertState, Transition, TransitionKind

UNMUTED_REASON = "no longer silenced or inhibited"
_REOPENED = frozenset({AlertState.PENDING, AlertState.FIRING})


def announce(
    transitions: Sequence[Transition],
    alerts: AlertBook,
    silences: Sequence[Silence],
    policy: InhibitPolicy,
    now_ms: int,
    device_types: Mapping[str, str],
) -> tuple[tuple[Transition, ...], AlertBook]:
    """Mark what the mute stage let through, then announce what nothing mutes any more.

    Args:
        transitions: the mute stage's output.
        alerts: the alert book after the lifecycle.
        silences: the silences in force.
        policy: the inhibition policy.
        now_ms: the current time.
        device_types: device id → device type, for device-type matchers.

    Returns:
        The transitions (alerts marked `notified` where announced) followed by one ``unmuted``
        transition per released alert, and the book with the same marks.
    """
    marked, flags = _marked(transitions)
    book = _with_flags(alerts, flags)
    inhibitor = Inhibitor.build(book.alerts.values(), policy)
    released = [
        _unmuted(a, now_ms)
        for a in book.alerts.values()
        if _due(a, inhibitor, silences, now_ms, device_types)
    ]
    book = _with_flags(book, {t.alert.id: True for t in released})
    return (*marked, *released), book


def _marked(transitions: Sequence[Transition]) -> tuple[list[Transition], dict[str, bool]]:
    flags: dict[str, bool] = {}
    out = []
    for t in transitions:
        flag = flags.get(t.alert.id, t.alert.notified)
        if t.from_state is AlertState.CLEARED and t.alert.state in _REOPENED:
            flag = False  # a new firing spell: it needs its own announcement
        if t.dispatchable and t.raises and t.alert.is_active:
            flag = True
        flags[t.alert.id] = flag
        out.append(t if t.alert.notified == flag else replace(t, alert=_flagged(t.alert, flag)))
    return out, flags


def _due(
    alert: Alert,
    inhibitor: Inhibitor,
    silences: Sequence[Silence],
    now_ms: int,
    device_types: Mapping[str, str],
) -> bool:
    return (
        alert.is_active
        and not alert.notified
        and not alert.flapping
        and muting_silence(alert, silences, now_ms, device_types) is None
        and inhibitor.inhibited_by(alert) is None
    )


def _unmuted(alert: Alert, now_ms: int) -> Transition:
    return Transition(
        _flagged(alert, True),
        TransitionKind.UNMUTED,
        now_ms,
        alert.state,
        alert.severity,
        notify=True,
        reason=UNMUTED_REASON,
    )


def _flagged(alert: Alert, notified: bool) -> Alert:
    return replace(alert, notified=notified)


def _with_flags(book: AlertBook, flags: Mapping[str, bool]) -> AlertBook:
    changed = {
        key: _flagged(a, flags[a.id])
        for key, a in book.alerts.items()
        if a.id in flags and a.notified != flags[a.id]
    }
    return replace(book, alerts={**book.alerts, **changed}) if changed else book
