"""Alert lifecycle: detections in, one alert per (rule, subject), transitions out.

States: pending → firing → acknowledged → cleared → closed. A cleared alert that fires again
before it is closed is reopened (same id, history kept), which is what lets flapping be seen.
Cleared alerts are closed `close_after_ms` after they cleared and leave the book; the closing
transition carries the final alert for the record. Detections older than the alert's last update
are ignored, so replaying a batch does not produce transitions twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from alerts.errors import TransitionError, UnknownAlertError
from alerts.model import (
    ACTIVE_ALERT_STATES,
    Alert,
    AlertChange,
    AlertState,
    Transition,
    TransitionKind,
    stable_id,
)
from rules.detection import Detection, DetectionState, Severity

Key = tuple[str, str]


@dataclass(frozen=True)
class LifecycleConfig:
    """Flapping: more than `flap_max_changes` state changes within `flap_window_ms` mark an
    alert flapping; it settles after `flap_quiet_ms` without a state change."""

    flap_window_ms: int = 10 * 60_000
    flap_max_changes: int = 6
    flap_quiet_ms: int = 10 * 60_000
    close_after_ms: int = 60 * 60_000


@dataclass(frozen=True)
class AlertBook:
    """The alerts that are not closed yet, keyed by (rule id, subject). Never mutated."""

    alerts: Mapping[Key, Alert] = field(default_factory=dict)
    config: LifecycleConfig = field(default_factory=LifecycleConfig)

    @classmethod
    def restore(cls, alerts: Iterable[Alert], config: LifecycleConfig | None = None) -> AlertBook:
        """Rebuild the book from stored alerts (closed ones are left out)."""
        kept = {a.key: a for a in alerts if a.state is not AlertState.CLOSED}
        return cls(kept, config or LifecycleConfig())

    def get(self, alert_id: str) -> Alert:
        for alert in self.alerts.values():
            if alert.id == alert_id:
                return alert
        raise UnknownAlertError(alert_id)

    def apply(
        self, detections: Iterable[Detection], now_ms: int
    ) -> tuple[AlertBook, tuple[Transition, ...]]:
        """Fold detections into the book, then run the time-driven checks at `now_ms`.

        Args:
            detections: engine output, in any order (applied by `ts_ms`).
            now_ms: the current time; settles flapping alerts and closes old cleared ones.

        Returns:
            The new book and the transitions, in the order they happened.
        """
        alerts = dict(self.alerts)
        out: list[Transition] = []
        for det in sorted(detections, key=lambda d: d.ts_ms):
            key = (det.rule_id, det.subject)
            for t in _on_detection(alerts.get(key), det, self.config):
                alerts[key] = t.alert
                out.append(t)
        for key, alert in list(alerts.items()):
            for t in _on_tick(alert, now_ms, self.config):
                out.append(t)
                alerts[key] = t.alert
            if alerts[key].state is AlertState.CLOSED:
                del alerts[key]
        return replace(self, alerts=alerts), tuple(out)

    def acknowledge(self, alert_id: str, actor: str, now_ms: int) -> tuple[AlertBook, Transition]:
        """An operator acknowledges a firing alert."""
        alert = self.get(alert_id)
        if alert.state is not AlertState.FIRING:
            raise TransitionError("alert", alert_id, alert.state, AlertState.ACKNOWLEDGED)
        changed = _change(alert, AlertState.ACKNOWLEDGED, now_ms, alert.severity, actor)
        t = _transition(alert, changed, TransitionKind.ACKNOWLEDGED, now_ms, notify=False)
        return replace(self, alerts={**self.alerts, alert.key: changed}), t

    def close(
        self, alert_id: str, actor: str, now_ms: int, reason: str = ""
    ) -> tuple[AlertBook, Transition]:
        """Close an alert in any state (e.g. its device was removed, its rule changed)."""
        alert = self.get(alert_id)
        changed = _change(alert, AlertState.CLOSED, now_ms, alert.severity, actor)
        alerts = {k: v for k, v in self.alerts.items() if k != alert.key}
        t = _transition(alert, changed, TransitionKind.CLOSED, now_ms, notify=False)
        return replace(self, alerts=alerts), replace(t, reason=reason)


def _on_detection(alert: Alert | None, det: Detection, cfg: LifecycleConfig) -> list[Transition]:
    if alert is not None and det.ts_ms < alert.updated_ms:
        return []
    if alert is None:
        return _open(det, cfg) if det.state is not DetectionState.CLEARED else []
    alert = replace(alert, value=det.value, updated_ms=det.ts_ms)
    target = {
        DetectionState.PENDING: AlertState.PENDING,
        DetectionState.FIRING: AlertState.FIRING,
        DetectionState.CLEARED: AlertState.CLEARED,
    }[det.state]
    if alert.state is AlertState.CLEARED and target is not AlertState.CLEARED:
        return _state_change(alert, target, det, cfg)
    if target is AlertState.CLEARED and alert.state is not AlertState.CLEARED:
        return _state_change(alert, target, det, cfg)
    if target is AlertState.FIRING and alert.state is AlertState.PENDING:
        return _state_change(alert, target, det, cfg)
    if alert.state in ACTIVE_ALERT_STATES and det.severity != alert.severity:
        changed = _change(alert, alert.state, det.ts_ms, det.severity)
        higher = det.severity > alert.severity
        return [_transition(alert, changed, TransitionKind.SEVERITY, det.ts_ms, notify=higher)]
    return []  # nothing changed that anyone needs to know; value/time are in the next change


def _open(det: Detection, cfg: LifecycleConfig) -> list[Transition]:
    target = AlertState.FIRING if det.state is DetectionState.FIRING else AlertState.PENDING
    created = Alert(
        id=stable_id("al", det.rule_id, det.subject, det.ts_ms),
        rule_id=det.rule_id,
        subject=det.subject,
        category=det.category,
        severity=det.severity,
        state=target,
        started_ms=det.ts_ms,
        updated_ms=det.ts_ms,
        value=det.value,
        device_id=det.device_id,
        metric=det.metric,
        district=det.district,
        grid=det.grid,
        history=(AlertChange(det.ts_ms, None, target, det.severity),),
    )
    kind = TransitionKind(target.value)
    first = Transition(created, kind, det.ts_ms, None, None, notify=kind is TransitionKind.FIRING)
    return [first, *_flap_check(created, det.ts_ms, cfg)]


def _state_change(
    alert: Alert, target: AlertState, det: Detection, cfg: LifecycleConfig
) -> list[Transition]:
    changed = _change(alert, target, det.ts_ms, det.severity)
    notify = target is AlertState.FIRING or (
        target is AlertState.CLEARED and alert.state in ACTIVE_ALERT_STATES
    )
    t = _transition(alert, changed, TransitionKind(target.value), det.ts_ms, notify=notify)
    return [t, *_flap_check(changed, det.ts_ms, cfg)]


def _flap_check(alert: Alert, ts_ms: int, cfg: LifecycleConfig) -> list[Transition]:
    if alert.flapping:
        return []
    recent = [c for c in alert.history if c.from_state != c.to_state]
    recent = [c for c in recent if c.ts_ms > ts_ms - cfg.flap_window_ms]
    if len(recent) <= cfg.flap_max_changes:
        return []
    flapping = replace(alert, flapping=True)
    return [_transition(alert, flapping, TransitionKind.FLAPPING, ts_ms, notify=False)]


def _on_tick(alert: Alert, now_ms: int, cfg: LifecycleConfig) -> list[Transition]:
    out: list[Transition] = []
    if alert.flapping and now_ms - _last_state_change_ms(alert) >= cfg.flap_quiet_ms:
        settled = replace(alert, flapping=False)
        notify = settled.state is not AlertState.PENDING
        out.append(_transition(alert, settled, TransitionKind.SETTLED, now_ms, notify=notify))
        alert = settled
    cleared_ms = alert.cleared_ms
    if (
        alert.state is AlertState.CLEARED
        and cleared_ms is not None
        and not alert.flapping
        and now_ms - cleared_ms >= cfg.close_after_ms
    ):
        closed = _change(alert, AlertState.CLOSED, now_ms, alert.severity)
        out.append(_transition(alert, closed, TransitionKind.CLOSED, now_ms, notify=False))
    return out


def _last_state_change_ms(alert: Alert) -> int:
    return max(c.ts_ms for c in alert.history if c.from_state != c.to_state)


def _change(
    alert: Alert, to_state: AlertState, ts_ms: int, severity: Severity, actor: str = "engine"
) -> Alert:
    entry = AlertChange(ts_ms, alert.state, to_state, severity, actor)
    cleared_ms = ts_ms if to_state is AlertState.CLEARED else alert.cleared_ms
    if to_state in (AlertState.PENDING, AlertState.FIRING):
        cleared_ms = None
    return replace(
        alert,
        state=to_state,
        severity=severity,
        updated_ms=max(alert.updated_ms, ts_ms),
        cleared_ms=cleared_ms,
        history=(*alert.history, entry),
    )


def _transition(
    before: Alert, after: Alert, kind: TransitionKind, ts_ms: int, *, notify: bool
) -> Transition:
    suppressed = "flapping" if after.flapping and notify else None
    return Transition(after, kind, ts_ms, before.state, before.severity, notify, suppressed)
