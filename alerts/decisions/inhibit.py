"""Inhibition: an active alert that explains others keeps those others from being dispatched.

Three rules, each sourced only by *active* (firing or acknowledged) alerts:

1. An offline device suppresses every other alert of that device (its values are stale anyway).
2. A red alert suppresses lower-severity alerts of other rules on the same subject.
3. An offline gateway suppresses the offline alerts of its child devices.

An alert is an *offline alert* when its category is ``device`` and its rule id is one of
`InhibitPolicy.offline_rules` (by default the ids the default rule pack uses for its staleness
rules: ``device-offline``, ``device-offline-safety``, ``device-offline-manhole``); the rule pack
and this policy must agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from alerts.model import Alert
from rules.detection import Category, Severity

DEFAULT_OFFLINE_RULES = frozenset(
    {"device-offline", "device-offline-safety", "device-offline-manhole"}
)


@dataclass(frozen=True)
class InhibitPolicy:
    """`gateways` maps a child device id to its gateway's device id (from the registry)."""

    offline_rules: frozenset[str] = DEFAULT_OFFLINE_RULES
    gateways: Mapping[str, str] = field(default_factory=dict)

    def is_offline(self, alert: Alert) -> bool:
        return alert.category is Category.DEVICE and alert.rule_id in self.offline_rules


@dataclass(frozen=True)
class Inhibitor:
    """Built from the current alerts; answers which alert (if any) inhibits a given one."""

    policy: InhibitPolicy
    offline: Mapping[str, Alert]  # device id → its active offline alert
    red: Mapping[str, Alert]  # subject → an active red alert on it

    @classmethod
    def build(cls, alerts: Iterable[Alert], policy: InhibitPolicy) -> Inhibitor:
        offline: dict[str, Alert] = {}
        red: dict[str, Alert] = {}
        for alert in alerts:
            if not alert.is_active:
                continue
            if policy.is_offline(alert) and alert.device_id:
                offline.setdefault(alert.device_id, alert)
            if alert.severity is Severity.RED:
                red.setdefault(alert.subject, alert)
        return cls(policy, offline, red)

    def inhibited_by(self, alert: Alert) -> Alert | None:
        """The alert that inhibits `alert`, or None.

        Args:
            alert: any alert, usually the one a transition is about.

        Returns:
            The active source alert of the first rule that applies.
        """
        device = alert.device_id
        if self.policy.is_offline(alert):
            gateway = self.policy.gateways.get(device) if device else None
            return self.offline.get(gateway) if gateway else None
        source = self.offline.get(device) if device else None
        if source is not None and source.id != alert.id:
            return source
        source = self.red.get(alert.subject)
        if source is not None and source.rule_id != alert.rule_id and alert.severity < Severity.RED:
            return source
        return None
